package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Key layout. Every key starts with a one-byte table tag; integers are
// big-endian so that badger's byte order is numeric order.
//
//	'v'                                 format marker
//	's' sid(4)                          stream registry: encoded StreamKey
//	'n' sid(4)                          stream meta: next offset, segment, totals
//	'p' sid(4)                          reader position (committed offset and totals)
//	'q' sid(4)                          delivered spans past the position (delivered.go)
//	'g' sid(4) seg(8)                   segment index: first offset of the segment
//	'e' sid(4) seg(8) off(8)            one entry: where its frame is (dataPtr)
//	'f' file(8) sid(4)                  end offset of the stream's frames in a data file
//	'k'                                 checkpoint: data-file position up to which frames are indexed
//	'c' len(2) akid hash(8)             credential table: encrypted secret
//	'd' id(8)                           dead letter
//
// The entries themselves are frames in data files (datafile.go); an 'e' row
// only points to one. Index rows ('e', 'g', 'f', 'n', 'k') are written
// after the frames they describe are fdatasynced, in one transaction per
// sync, never synced themselves: after a crash, recovery indexes again the
// frames after the checkpoint (replay.go).
//
// The index rows of a stream are grouped in segments (a new one starts
// every Options.SegmentBytes of entries) and the segment number sits in the
// key before the offset: a fully consumed segment is one prefix ('e' sid
// seg) that DropPrefix removes at once, where per-key deletes would leave
// tombstones behind. Offsets and segments both only grow, so (seg, off)
// order is offset order and a reader iterates one prefix ('e' sid) from a
// single seek.
//
// The small per-stream keys ('n', 'g') are written in the same transaction
// as the index rows they describe, so Open reads them instead of scanning
// entries: open time does not depend on the backlog.
const (
	tagVersion  = 'v'
	tagStream   = 's'
	tagMeta     = 'n'
	tagPosition = 'p'
	tagSpans    = 'q'
	tagSegment  = 'g'
	tagEntry    = 'e'
	tagFileEnd  = 'f'
	tagCheck    = 'k'
	tagCred     = 'c'
	tagDead     = 'd'
)

// formatVersion is stored under the 'v' key; Open refuses other formats.
// Version 1 kept entries in badger's value log.
const formatVersion = "slsrelay-wal/2"

var (
	versionKey    = []byte{tagVersion}
	checkpointKey = []byte{tagCheck}
)

func fileEndKey(file uint64, sid uint32) []byte {
	k := make([]byte, 13)
	k[0] = tagFileEnd
	binary.BigEndian.PutUint64(k[1:], file)
	binary.BigEndian.PutUint32(k[9:], sid)
	return k
}

// dataPos is a position in the data files: the value of the 'k' key.
type dataPos struct {
	file uint64
	pos  int64
}

func (p dataPos) encode() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16), p.file)
	return binary.BigEndian.AppendUint64(b, uint64(p.pos))
}

func decodeDataPos(b []byte) (dataPos, error) {
	if len(b) != 16 {
		return dataPos{}, fmt.Errorf("checkpoint is %d bytes, want 16: %w", len(b), ErrCorrupt)
	}
	return dataPos{file: binary.BigEndian.Uint64(b), pos: int64(binary.BigEndian.Uint64(b[8:]))}, nil
}

func sidKey(tag byte, sid uint32) []byte {
	k := make([]byte, 5)
	k[0] = tag
	binary.BigEndian.PutUint32(k[1:], sid)
	return k
}

func segmentKey(sid uint32, seg uint64) []byte {
	k := make([]byte, 13)
	k[0] = tagSegment
	binary.BigEndian.PutUint32(k[1:], sid)
	binary.BigEndian.PutUint64(k[5:], seg)
	return k
}

// segmentPrefix is what DropPrefix removes when a segment is consumed.
func segmentPrefix(sid uint32, seg uint64) []byte {
	k := make([]byte, 13)
	k[0] = tagEntry
	binary.BigEndian.PutUint32(k[1:], sid)
	binary.BigEndian.PutUint64(k[5:], seg)
	return k
}

func entryKey(sid uint32, seg uint64, off int64) []byte {
	k := make([]byte, 21)
	k[0] = tagEntry
	binary.BigEndian.PutUint32(k[1:], sid)
	binary.BigEndian.PutUint64(k[5:], seg)
	binary.BigEndian.PutUint64(k[13:], uint64(off))
	return k
}

// parseEntryKey returns the segment and offset of an 'e' key.
func parseEntryKey(k []byte) (sid uint32, seg uint64, off int64, ok bool) {
	if len(k) != 21 || k[0] != tagEntry {
		return 0, 0, 0, false
	}
	return binary.BigEndian.Uint32(k[1:]), binary.BigEndian.Uint64(k[5:]), int64(binary.BigEndian.Uint64(k[13:])), true
}

func deadKey(id uint64) []byte {
	k := make([]byte, 9)
	k[0] = tagDead
	binary.BigEndian.PutUint64(k[1:], id)
	return k
}

// credKey names one distinct credential: the AccessKeyID (so an operator
// can tell which keys are stored) and a keyed hash of the secret (so two
// secrets for one ID are two rows, and the hash reveals nothing without the
// encryption key).
func credKey(akid string, hash [8]byte) []byte {
	k := make([]byte, 0, 3+len(akid)+8)
	k = append(k, tagCred)
	k = binary.BigEndian.AppendUint16(k, uint16(len(akid)))
	k = append(k, akid...)
	return append(k, hash[:]...)
}

// streamMeta is the value of an 'n' key.
type streamMeta struct {
	Next       int64  // offset the next entry gets
	Seg        uint64 // segment new entries go to
	SegBytes   int64  // bytes in segment Seg so far
	HasSeg     bool   // whether segment Seg has been started ('g' key written)
	CumBytes   int64  // bytes ever appended (stored encodings)
	CumEntries int64  // entries ever appended
}

const metaLen = 8 + 8 + 8 + 1 + 8 + 8

func (m streamMeta) encode() []byte {
	b := make([]byte, 0, metaLen)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Next))
	b = binary.BigEndian.AppendUint64(b, m.Seg)
	b = binary.BigEndian.AppendUint64(b, uint64(m.SegBytes))
	if m.HasSeg {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(m.CumBytes))
	return binary.BigEndian.AppendUint64(b, uint64(m.CumEntries))
}

func decodeMeta(b []byte) (streamMeta, error) {
	if len(b) != metaLen {
		return streamMeta{}, fmt.Errorf("stream meta is %d bytes, want %d: %w", len(b), metaLen, ErrCorrupt)
	}
	return streamMeta{
		Next:       int64(binary.BigEndian.Uint64(b)),
		Seg:        binary.BigEndian.Uint64(b[8:]),
		SegBytes:   int64(binary.BigEndian.Uint64(b[16:])),
		HasSeg:     b[24] == 1,
		CumBytes:   int64(binary.BigEndian.Uint64(b[25:])),
		CumEntries: int64(binary.BigEndian.Uint64(b[33:])),
	}, nil
}

// position is the value of a 'p' key: where the stream's reader resumes,
// with the stream totals at that point so pending bytes need no scan.
type position struct {
	Offset     int64
	CumBytes   int64
	CumEntries int64
}

func (p position) encode() []byte {
	b := make([]byte, 0, 24)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Offset))
	b = binary.BigEndian.AppendUint64(b, uint64(p.CumBytes))
	return binary.BigEndian.AppendUint64(b, uint64(p.CumEntries))
}

func decodePosition(b []byte) (position, error) {
	if len(b) != 24 {
		return position{}, fmt.Errorf("reader position is %d bytes, want 24: %w", len(b), ErrCorrupt)
	}
	return position{
		Offset:     int64(binary.BigEndian.Uint64(b)),
		CumBytes:   int64(binary.BigEndian.Uint64(b[8:])),
		CumEntries: int64(binary.BigEndian.Uint64(b[16:])),
	}, nil
}

func encodeStreamKey(k StreamKey) []byte {
	b := make([]byte, 0, 12+len(k.Project)+len(k.Logstore))
	b = binary.AppendUvarint(b, uint64(len(k.Project)))
	b = append(b, k.Project...)
	b = binary.AppendUvarint(b, uint64(len(k.Logstore)))
	b = append(b, k.Logstore...)
	return binary.BigEndian.AppendUint32(b, uint32(k.Partition))
}

var errShort = errors.New("truncated")

func decodeStreamKey(b []byte) (StreamKey, []byte, error) {
	var k StreamKey
	var s string
	var err error
	if s, b, err = readString(b); err != nil {
		return k, nil, err
	}
	k.Project = s
	if s, b, err = readString(b); err != nil {
		return k, nil, err
	}
	k.Logstore = s
	if len(b) < 4 {
		return k, nil, errShort
	}
	k.Partition = int32(binary.BigEndian.Uint32(b))
	return k, b[4:], nil
}

func readString(b []byte) (string, []byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n {
		return "", nil, errShort
	}
	return string(b[w : w+int(n)]), b[w+int(n):], nil
}
