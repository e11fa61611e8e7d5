//go:build !race

package main

// See e2e_race_on_test.go.
const (
	e2eRace           = false
	e2eRecordsPerCase = 30
	e2eLoadRecords    = 600
)
