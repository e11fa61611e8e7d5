package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
)

// Stored entry encoding (the body of a data-file frame, and part of a dead letter):
//
//	version(1)=1 | crc32c(4) of everything after it | body
//	body: baseOffset(8) records(4) magic(1) codec(1) flags(1)
//	      receivedAt(8) cumBytes(8) cumEntries(8)
//	      producer(str) clientID(str) [saslUser(str) clientSoftware(str)]
//	      akid(str) credHash(8) data(str)
//
// The bracketed strings are there only when flag flagAttribution is set
// (either is not empty), so an entry without them is stored exactly as
// before they existed, and entries stored before are read as they were.
//
// str is a uvarint length and the bytes. The checksum is ours, not only
// badger's: badger does not verify value-log checksums on read by default,
// and a flipped byte in a batch would otherwise reach SLS. The base offset is
// repeated in the value so a value read under the wrong key is caught too.
// cumBytes/cumEntries are the stream totals before this entry: a reader that
// commits past it can persist exact pending figures without any scan.

const codecVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Bits of the flags byte.
const (
	flagJSON      = 1
	flagDelivered = 2 // Entry.Delivered
	// flagAttribution: SASLUser and ClientSoftware follow ClientID.
	flagAttribution = 4
)

type storedEntry struct {
	Entry      Entry // Credential.AccessKeySecret empty; see CredHash
	CumBytes   int64
	CumEntries int64
	CredHash   [8]byte
	// frame is the pooled buffer Entry.Data points into; nil when the
	// frame was read into a buffer of its own.
	frame *frameBuf
}

func encodeEntry(e *Entry, base, cumBytes, cumEntries int64, credHash [8]byte) []byte {
	return appendEntry(nil, e, base, cumBytes, cumEntries, credHash)
}

// appendEntry appends the stored encoding of e to b.
func appendEntry(b []byte, e *Entry, base, cumBytes, cumEntries int64, credHash [8]byte) []byte {
	n := 1 + 4 + 8 + 4 + 3 + 8 + 8 + 8 + 8 +
		len(e.Producer) + len(e.ClientID) + len(e.SASLUser) + len(e.ClientSoftware) +
		len(e.Credential.AccessKeyID) + len(e.Data) + 6*binary.MaxVarintLen64
	b = slices.Grow(b, n)
	start := len(b)
	b = append(b, codecVersion, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(base))
	b = binary.BigEndian.AppendUint32(b, uint32(e.Records))
	var flags byte
	if e.JSON {
		flags |= flagJSON
	}
	if e.Delivered {
		flags |= flagDelivered
	}
	attributed := e.SASLUser != "" || e.ClientSoftware != ""
	if attributed {
		flags |= flagAttribution
	}
	b = append(b, byte(e.Magic), byte(e.Codec), flags)
	b = binary.BigEndian.AppendUint64(b, uint64(e.ReceivedAt))
	b = binary.BigEndian.AppendUint64(b, uint64(cumBytes))
	b = binary.BigEndian.AppendUint64(b, uint64(cumEntries))
	b = appendString(b, e.Producer)
	b = appendString(b, e.ClientID)
	if attributed {
		b = appendString(b, e.SASLUser)
		b = appendString(b, e.ClientSoftware)
	}
	b = appendString(b, e.Credential.AccessKeyID)
	b = append(b, credHash[:]...)
	b = binary.AppendUvarint(b, uint64(len(e.Data)))
	b = append(b, e.Data...)
	binary.BigEndian.PutUint32(b[start+1:start+5], crc32.Checksum(b[start+5:], castagnoli))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeEntry checks and decodes a stored entry. Data aliases b.
func decodeEntry(b []byte) (*storedEntry, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("entry is %d bytes: %w", len(b), ErrCorrupt)
	}
	if b[0] != codecVersion {
		return nil, fmt.Errorf("entry encoding version %d unknown: %w", b[0], ErrCorrupt)
	}
	if got, want := crc32.Checksum(b[5:], castagnoli), binary.BigEndian.Uint32(b[1:5]); got != want {
		return nil, fmt.Errorf("entry checksum %08x, stored %08x: %w", got, want, ErrCorrupt)
	}
	p := b[5:]
	if len(p) < 8+4+3+8+8+8 {
		return nil, fmt.Errorf("entry header truncated: %w", ErrCorrupt)
	}
	se := &storedEntry{}
	e := &se.Entry
	e.BaseOffset = int64(binary.BigEndian.Uint64(p))
	e.Records = int32(binary.BigEndian.Uint32(p[8:]))
	e.Magic = int8(p[12])
	e.Codec = int8(p[13])
	flags := p[14]
	e.JSON = flags&flagJSON != 0
	e.Delivered = flags&flagDelivered != 0
	e.ReceivedAt = int64(binary.BigEndian.Uint64(p[15:]))
	se.CumBytes = int64(binary.BigEndian.Uint64(p[23:]))
	se.CumEntries = int64(binary.BigEndian.Uint64(p[31:]))
	p = p[39:]
	var err error
	if e.Producer, p, err = readString(p); err != nil {
		return nil, fmt.Errorf("entry producer: %w", ErrCorrupt)
	}
	if e.ClientID, p, err = readString(p); err != nil {
		return nil, fmt.Errorf("entry client id: %w", ErrCorrupt)
	}
	if flags&flagAttribution != 0 {
		if e.SASLUser, p, err = readString(p); err != nil {
			return nil, fmt.Errorf("entry SASL user: %w", ErrCorrupt)
		}
		if e.ClientSoftware, p, err = readString(p); err != nil {
			return nil, fmt.Errorf("entry client software: %w", ErrCorrupt)
		}
	}
	if e.Credential.AccessKeyID, p, err = readString(p); err != nil {
		return nil, fmt.Errorf("entry credential: %w", ErrCorrupt)
	}
	if len(p) < 8 {
		return nil, fmt.Errorf("entry credential hash: %w", ErrCorrupt)
	}
	copy(se.CredHash[:], p)
	p = p[8:]
	n, w := binary.Uvarint(p)
	if w <= 0 || uint64(len(p)-w) != n {
		return nil, fmt.Errorf("entry data length: %w", ErrCorrupt)
	}
	e.Data = p[w:]
	return se, nil
}
