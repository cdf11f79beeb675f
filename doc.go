// Package arch holds no code: its test (arch_test.go) checks that Vigil's functional
// core (model, detect, plan) stays pure. The application is package vigil in ./vigil;
// the command is ./cmd/vigil.
package arch
