//go:build race

package main

// Under the race detector everything runs several times slower: the
// end-to-end tests send fewer records.
const (
	e2eRace           = true
	e2eRecordsPerCase = 12
	e2eLoadRecords    = 150
)
