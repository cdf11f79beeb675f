// Package vigil is the application: it wires the store, the engine, the drivers, the
// sources and the API into one process (`vigil serve`), builds the demo on the
// simulated cloud (`vigil demo`), and reads the policy file. It is embeddable, so
// tests start a whole Vigil in-process.
package vigil
