package wal

import (
	"bytes"
	"testing"
)

// The SASL user and client software are stored only when set: an entry
// without them is stored byte for byte as before they existed, so entries
// stored by an older relay read the same, and both kinds round-trip.
func TestEntryAttributionEncoding(t *testing.T) {
	base := Entry{Records: 2, Magic: 2, Producer: "127.0.0.2:4000", ClientID: "app-1",
		Credential: Credential{AccessKeyID: "ak"}, Data: []byte("batch")}
	// The layout before the attribution fields: the same encoder with the
	// flag clear writes exactly this, so it is built by hand here.
	old := []byte{codecVersion, 0, 0, 0, 0}
	old = append(old, 0, 0, 0, 0, 0, 0, 0, 9) // base offset 9
	old = append(old, 0, 0, 0, 2, 2, 0, 0)    // records, magic, codec, flags
	old = append(old, make([]byte, 24)...)    // receivedAt, cumBytes, cumEntries
	for _, s := range []string{"127.0.0.2:4000", "app-1", "ak"} {
		old = appendString(old, s)
	}
	old = append(old, make([]byte, 8)...) // credential hash
	old = appendString(old, "batch")
	if got := encodeEntry(&base, 9, 0, 0, [8]byte{}); !bytes.Equal(got[5:], old[5:]) {
		t.Fatalf("entry without attribution encodes as\n%x\nnot as before\n%x", got[5:], old[5:])
	}

	f := func(user, software string) {
		t.Helper()
		e := base
		e.SASLUser, e.ClientSoftware = user, software
		se, err := decodeEntry(encodeEntry(&e, 9, 0, 0, [8]byte{}))
		if err != nil {
			t.Fatal(err)
		}
		got := se.Entry
		if got.SASLUser != user || got.ClientSoftware != software || got.ClientID != "app-1" ||
			got.Producer != "127.0.0.2:4000" || got.Credential.AccessKeyID != "ak" || string(got.Data) != "batch" {
			t.Fatalf("(%q, %q) decodes as %+v", user, software, got)
		}
	}
	f("", "")
	f("alice", "")
	f("", "franz-go/1.18.0")
	f("alice", "franz-go/1.18.0")
}
