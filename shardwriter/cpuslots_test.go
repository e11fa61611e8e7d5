package shardwriter

import (
	"testing"
	"time"
)

// TestPutLZ4WaitsForCPUSlot: a sender compresses and signs holding a CPU
// slot (cpuslots.go), as conversion does. With every slot taken, a
// PutLogs is not sent; once one is given back, it is, and its slot is
// free again after.
func TestPutLZ4WaitsForCPUSlot(t *testing.T) {
	if !cpuYield {
		t.Fatal("the CPU slots are off")
	}
	s := wtStandIn(t)
	p, rec := ptPool(t, s, "v1", "")
	acquireCPU() // makes the slots
	held := cap(cpuSlots)
	for range held - 1 {
		acquireCPU()
	}
	released := false
	t.Cleanup(func() {
		if !released {
			for range held {
				releaseCPU()
			}
		}
	})

	done := make(chan error, 1)
	go func() {
		done <- p.putLogs(&Options{Compression: "lz4"}, wtCred, wtProject, wtLogstore, "", ptGroup(50, "slot"))
	}()
	select {
	case err := <-done:
		t.Fatalf("PutLogs went out while every CPU slot was held (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	if req := rec.take(); req != nil {
		t.Fatalf("sent %s while every CPU slot was held", req.URL)
	}

	releaseCPU()
	held--
	if err := <-done; err != nil {
		t.Fatalf("PutLogs after a slot came back: %v", err)
	}
	if rec.take() == nil {
		t.Fatal("no request recorded")
	}
	// Another test's writer still stopping may hold one for a moment;
	// a sender that kept its slot holds it for good.
	for deadline := time.Now().Add(5 * time.Second); len(cpuSlots) != held; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d slots held after the PutLogs, want %d: the sender kept one", len(cpuSlots), held)
		}
	}
	for range held {
		releaseCPU()
	}
	released = true
}
