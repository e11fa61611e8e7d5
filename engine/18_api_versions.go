package engine

// ApiVersions: v0 to v5 (every version kmsg knows).
//
// Behaviour:
//   - Lists the keys this relay serves with their version ranges, and no
//     features: a v3+ response listing a supported feature with minimum
//     version 0 makes Java clients up to 3.8 throw and never connect.
//   - A version above what we serve is answered as Kafka does (KIP-511): a
//     v0 response with UNSUPPORTED_VERSION and our ApiVersions range, so
//     the client retries at a version we know.
//   - v3+: client software name and version must match Kafka's pattern,
//     else INVALID_REQUEST. Valid ones are stored with the connection's
//     batches (wal.Entry.ClientSoftware), for delivery's tags.
//   - Served before SASL authentication: clients ask it first.

import (
	"regexp"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(18, api{min: 0, max: 5, beforeAuth: true, handle: (*session).handleApiVersions})
}

var softwareNameOrVersion = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func (s *session) handleApiVersions(r *request) {
	req := r.kreq.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if req.Version >= 3 && (!softwareNameOrVersion.MatchString(req.ClientSoftwareName) || !softwareNameOrVersion.MatchString(req.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		s.respond(r.slot, r.hdr.corrID, resp)
		return
	}
	if req.Version >= 3 {
		s.software = req.ClientSoftwareName + "/" + req.ClientSoftwareVersion
	}
	keys := make([]int16, 0, len(apis))
	for k := range apis {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		a := apis[k]
		key := kmsg.NewApiVersionsResponseApiKey()
		key.ApiKey, key.MinVersion, key.MaxVersion = k, a.min, a.max
		resp.ApiKeys = append(resp.ApiKeys, key)
	}
	s.respond(r.slot, r.hdr.corrID, resp)
}

// respondUnsupportedApiVersions answers an ApiVersions request whose version
// we cannot parse.
func (s *session) respondUnsupportedApiVersions(hdr requestHeader) {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	key := kmsg.NewApiVersionsResponseApiKey()
	key.ApiKey, key.MinVersion, key.MaxVersion = 18, apis[18].min, apis[18].max
	resp.ApiKeys = append(resp.ApiKeys, key)
	s.respond(s.reserve(false), hdr.corrID, resp)
}
