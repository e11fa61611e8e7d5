package relay

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// DeadLetterSelection names dead letters: ids, inclusive id ranges, or
// all of them, narrowed to one stream and to one AccessKey ID when those
// are set. A filter alone names every dead letter it matches.
type DeadLetterSelection struct {
	IDs    []uint64  `json:"ids,omitempty"`
	Ranges []IDRange `json:"ranges,omitempty"`
	All    bool      `json:"all,omitempty"`
	// Stream is "project/logstore" (every partition) or
	// "project/logstore/partition" (a number: 007 is 7).
	Stream string `json:"stream,omitempty"`
	// AccessKeyID names the dead letters sent with that AccessKey.
	AccessKeyID string `json:"access_key_id,omitempty"`
}

// IDRange is the dead letters From to To, both included.
type IDRange struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// ParseDeadLetterSelection reads the command line's dead letters: each arg
// an id ("7") or a range ("7-12"); all for -all.
func ParseDeadLetterSelection(args []string, all bool) (DeadLetterSelection, error) {
	sel := DeadLetterSelection{All: all}
	for _, a := range args {
		from, to, isRange := strings.Cut(a, "-")
		f, err := strconv.ParseUint(from, 10, 64)
		if err != nil {
			return sel, fmt.Errorf("dead letter id %q is not a number (nor a range FROM-TO)", a)
		}
		if !isRange {
			sel.IDs = append(sel.IDs, f)
			continue
		}
		t, err := strconv.ParseUint(to, 10, 64)
		if err != nil || t < f {
			return sel, fmt.Errorf("dead letter range %q is not FROM-TO with FROM <= TO", a)
		}
		sel.Ranges = append(sel.Ranges, IDRange{f, t})
	}
	return sel, nil
}

// Check reports a stream filter that is not project/logstore[/partition].
func (s DeadLetterSelection) Check() error {
	if s.Stream == "" {
		return nil
	}
	parts := strings.Split(s.Stream, "/")
	bad := len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "")
	if len(parts) == 3 {
		_, err := streamPartition(parts[2])
		bad = bad || err != nil
	}
	if bad {
		return fmt.Errorf("stream %q is not project/logstore or project/logstore/partition", s.Stream)
	}
	return nil
}

// Empty tells whether s names nothing.
func (s DeadLetterSelection) Empty() bool {
	return s.onlyIDs() && len(s.IDs) == 0
}

// onlyIDs tells whether s is a list of ids and nothing else.
func (s DeadLetterSelection) onlyIDs() bool {
	return !s.All && len(s.Ranges) == 0 && s.Stream == "" && s.AccessKeyID == ""
}

// Matches tells whether s names d; an empty selection matches every dead
// letter (`dlq list` without arguments).
func (s DeadLetterSelection) Matches(d DeadLetterInfo) bool {
	named := s.All || len(s.IDs) == 0 && len(s.Ranges) == 0 || slices.Contains(s.IDs, d.ID)
	for _, r := range s.Ranges {
		named = named || r.From <= d.ID && d.ID <= r.To
	}
	if s.AccessKeyID != "" && s.AccessKeyID != d.AccessKeyID {
		return false
	}
	return named && s.matchesStream(d)
}

func (s DeadLetterSelection) matchesStream(d DeadLetterInfo) bool {
	if s.Stream == "" {
		return true
	}
	parts := strings.Split(s.Stream, "/")
	if len(parts) < 2 || parts[0] != d.Project || parts[1] != d.Logstore {
		return false
	}
	if len(parts) == 2 {
		return true
	}
	// As a number: "007" is partition 7.
	p, err := streamPartition(parts[2])
	return err == nil && p == d.Partition
}

// streamPartition reads a stream filter's partition: a Kafka partition
// number, 0 to 2^31-1, leading zeros allowed.
func streamPartition(s string) (int32, error) {
	n, err := strconv.ParseUint(s, 10, 31)
	return int32(n), err
}
