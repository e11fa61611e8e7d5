package shardwriter

import (
	"runtime"
	"sync"
)

// Delivery must not slow acknowledgements. Converting entries into
// LogGroups is the writers' CPU-heavy work (decompression, protobuf); with
// every P busy converting, a goroutine of the ack path that becomes
// runnable — an event loop back from epoll, the WAL's committer back from
// fdatasync — finds no P free and waits until the Go scheduler preempts a
// writer, up to 10 ms per hop. So writers convert holding one of
// GOMAXPROCS−1 slots (at least one), which keeps a P free for the ack path
// when there are two or more, and a writer yields after each entry, so a
// goroutine waiting for its P runs then, not at the next preemption.

// convertYield turns the slots and the yield on (BenchmarkWakeLatency
// compares).
var convertYield = true

var (
	cpuSlotsOnce sync.Once
	cpuSlots     chan struct{}
)

// acquireConvert takes a conversion slot; releaseConvert gives it back and
// yields.
func acquireConvert() {
	if !convertYield {
		return
	}
	cpuSlotsOnce.Do(func() {
		cpuSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))
	})
	cpuSlots <- struct{}{}
}

func releaseConvert() {
	if !convertYield {
		return
	}
	<-cpuSlots
	runtime.Gosched()
}
