package shardwriter

import (
	"runtime"
	"sync"
)

// Delivery must not slow acknowledgements. The writers' CPU-heavy work is
// converting entries into LogGroups (decompression, protobuf) and, in the
// senders, lz4 of each LogGroup and the MD5 its signature needs — 60–80 %
// of delivery's CPU, in runs of up to ~15 ms for a 4 MiB LogGroup. With
// every P busy at it, a goroutine of the ack path that becomes runnable —
// an event loop back from epoll, the WAL's committer back from fdatasync —
// finds no P free and waits until the Go scheduler preempts a writer, up
// to 10 ms per hop. So that work is done holding one of GOMAXPROCS−1 slots
// (at least one), which keeps a P free for the ack path when there are two
// or more, and a holder yields as it gives its slot back, so a goroutine
// waiting for its P runs then, not at the next preemption. Waits for
// SLS's answers and for the WAL hold no slot; nor does zstd
// (sls.compression: zstd), which the SDK compresses inside the same call
// that waits for the answer.

// cpuYield turns the slots and the yield on (BenchmarkWakeLatency
// compares).
var cpuYield = true

var (
	cpuSlotsOnce sync.Once
	cpuSlots     chan struct{}
)

// acquireCPU takes a CPU slot; releaseCPU gives it back and yields. Safe
// for concurrent use.
func acquireCPU() {
	if !cpuYield {
		return
	}
	cpuSlotsOnce.Do(func() {
		cpuSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))
	})
	cpuSlots <- struct{}{}
}

func releaseCPU() {
	if !cpuYield {
		return
	}
	<-cpuSlots
	runtime.Gosched()
}
