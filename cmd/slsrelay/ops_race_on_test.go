//go:build race

package main

// opsRace: the tests run under the race detector, and so does the child
// binary they build.
const opsRace = true
