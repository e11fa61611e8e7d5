package shardwriter

import (
	"fmt"
	"net"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/slsrelay/slsrelay/wal"
)

// Attribution: which producer a log came from. SLS records it per
// LogGroup: its Source, shown as __source__ ("Log source (e.g., IP address
// or machine identifier)", https://www.alibabacloud.com/help/en/sls/reserved-fields),
// and its LogTags, each shown as __tag__:<key> (the LogTag struct,
// https://www.alibabacloud.com/help/en/sls/developer-reference/api-sls-2020-12-30-struct-logtag;
// the SDK's own producer sends key "__pack_id__" and SLS shows
// __tag__:__pack_id__, producer/producer_batch.go). Logtail records the
// address of the machine that sent the logs; so does the relay, by
// default, with the address of the producer's connection.
//
// A LogGroup has one attribution, so logs of different attributions never
// share one (Converter.Convert flushes when it changes).

// Values of Options.Source that are not a fixed string.
const (
	SourceClientAddress = "client_address" // the producer's IP (the default)
	SourceRelayHost     = "relay_host"     // this host's name
)

// Values of Options.Tags: each names a LogGroup tag, with that key.
const (
	TagClientID       = "client_id"       // the Kafka client.id
	TagSASLUser       = "sasl_user"       // who the producer logged in as (wal.Entry.SASLUser)
	TagClientSoftware = "client_software" // "name/version" from ApiVersions v3+
)

// atTagKeys are the tag keys, in the order a LogGroup carries them.
var atTagKeys = [...]string{TagClientID, TagSASLUser, TagClientSoftware}

// atMaxSource is the longest __source__ SLS takes: "Any UTF-8 encoded
// string up to 128 bytes" (data model,
// https://help.aliyun.com/en/sls/developer-reference/data-model).
const atMaxSource = 128

// attribution is the source and tags of a LogGroup. It is comparable: two
// entries may share a LogGroup when their attributions are ==.
type attribution struct {
	source string
	// tags are the tag values in the order of atTagKeys; "" is no tag
	// (the value is unknown, or the tag is not configured).
	tags [len(atTagKeys)]string
}

// attributor computes entries' attributions from Options.Source and
// Options.Tags. It is immutable, and safe for concurrent use.
type attributor struct {
	byClient bool   // source: the producer's IP
	fixed    string // source otherwise, and for an entry without an address
	tags     [len(atTagKeys)]bool
}

// newAttributor returns the attributor of Options.Source and Options.Tags:
// source is SourceClientAddress (or ""), SourceRelayHost, or a fixed
// string; tags lists tag names (nil means [client_id]).
func newAttributor(source string, tags []string) (*attributor, error) {
	host, _ := os.Hostname()
	a := &attributor{fixed: host}
	switch source {
	case "", SourceClientAddress:
		a.byClient = true
	case SourceRelayHost:
	default:
		a.fixed = source
	}
	if len(a.fixed) > atMaxSource || !utf8.ValidString(a.fixed) {
		return nil, fmt.Errorf("shardwriter: the LogGroup source %q is not UTF-8 of at most %d bytes, as SLS requires", a.fixed, atMaxSource)
	}
	if tags == nil {
		tags = []string{TagClientID}
	}
	for _, name := range tags {
		i := atTagIndex(name)
		if i < 0 {
			return nil, fmt.Errorf("shardwriter: unknown LogGroup tag %q (known: %s)", name, strings.Join(atTagKeys[:], ", "))
		}
		a.tags[i] = true
	}
	return a, nil
}

func atTagIndex(name string) int {
	for i, k := range atTagKeys {
		if k == name {
			return i
		}
	}
	return -1
}

// of returns the attribution of e's logs. It does not allocate.
func (a *attributor) of(e *wal.Entry) attribution {
	at := attribution{source: a.fixed}
	if a.byClient && e.Producer != "" {
		// "ip:port" ("[ip6]:port" for IPv6): the IP, as Logtail records
		// an IP; an address that does not parse is kept whole.
		at.source = e.Producer
		if host, _, err := net.SplitHostPort(e.Producer); err == nil {
			at.source = host
		}
	}
	values := [len(atTagKeys)]string{e.ClientID, e.SASLUser, e.ClientSoftware}
	for i, on := range a.tags {
		if on {
			at.tags[i] = atTagValue(values[i])
		}
	}
	return at
}

// atMaxTagValue bounds a tag value. SLS's documentation states no limit
// for tags; this one keeps the three tags, with topic and source, inside
// the room lgMaxBytes leaves under SLS's 5 MB per LogGroup (a Kafka
// client.id may be 32 KiB).
const atMaxTagValue = 16 << 10

// atTagValue returns v made valid UTF-8 (SLS stores tags as protobuf
// strings, and the SDK reads them back as Go strings; the Kafka protocol
// does not promise UTF-8 in client.id) and cut to atMaxTagValue bytes (a
// rune cut in two becomes U+FFFD).
func atTagValue(v string) string {
	if len(v) > atMaxTagValue {
		v = v[:atMaxTagValue]
	}
	if utf8.ValidString(v) {
		return v
	}
	return strings.ToValidUTF8(v, "\uFFFD")
}

// appendTags appends at's tags to a LogGroup being encoded.
func (at *attribution) appendTags(b []byte) []byte {
	for i, v := range at.tags {
		if v != "" {
			b = lgAppendTag(b, atTagKeys[i], v)
		}
	}
	return b
}
