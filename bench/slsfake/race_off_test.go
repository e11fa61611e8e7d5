//go:build !race

package slsfake

const raceEnabled = false
