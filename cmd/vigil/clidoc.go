package main

// docs/cli.md is every command's --help, rendered by TestCLIDoc (clidoc_test.go),
// which fails when the file is stale. Regenerate it with:
//
//go:generate go test -run TestCLIDoc -update .
