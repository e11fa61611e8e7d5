//go:build race

package shardwriter

const cvtRaceEnabled = true
