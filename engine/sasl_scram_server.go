package engine

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// scramServer is the server side of one SCRAM exchange (RFC 5802 §5):
//
//	client-first  n,,n=user,r=cnonce
//	server-first  r=cnonce+snonce,s=salt,i=iterations
//	client-final  c=biws,r=cnonce+snonce,p=proof
//	server-final  v=signature
//
// An unknown user (or one without a credential for this mechanism) gets a
// server-first made up from its name, the same every time, and fails at the
// proof like a wrong password: the client cannot tell which it was (RFC 5802
// §5.1 allows it, Kafka does likewise). Not safe for concurrent use: a
// session's frames are handled one at a time.
type scramServer struct {
	mechanism string
	h         func() hash.Hash
	users     UserDirectory
	decoy     []byte // key for made-up salts of unknown users
	// serverNonce is the server's part of the nonce: random unless a
	// test sets it (RFC 7677's example).
	serverNonce string

	step            int // 0: client-first next; 1: client-final next; 2: over
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string // client's and server's
	clientNonce     string
	name            string
	user            *RelayUser // nil: unknown
	cred            SCRAMCredential
}

func newSCRAMServer(mechanism string, users UserDirectory, decoy []byte) *scramServer {
	return &scramServer{mechanism: mechanism, h: scramHash(mechanism), users: users, decoy: decoy}
}

// authFailure is why a login failed: reason is for the relay's log, and
// for the client only if public (a malformed AccessKey PLAIN token, whose
// problems SLS's endpoint also names); user is the name the client gave,
// if it got that far.
type authFailure struct {
	user   string
	reason string
	public bool
}

func (e *authFailure) Error() string { return e.reason }

func failAuth(user, format string, args ...any) error {
	return &authFailure{user: user, reason: fmt.Sprintf(format, args...)}
}

// next takes the client's message and returns the answer. When the
// exchange succeeds it returns the user as well; any error ends it.
func (s *scramServer) next(msg []byte) ([]byte, *login, error) {
	switch s.step {
	case 0:
		s.step = 1
		reply, err := s.first(string(msg))
		return reply, nil, err
	case 1:
		s.step = 2
		reply, u, err := s.final(string(msg))
		if err != nil {
			return nil, nil, err
		}
		return reply, &login{principal: u.Principal, user: u}, nil
	}
	return nil, nil, failAuth(s.name, "SCRAM exchange already over")
}

func (s *scramServer) first(msg string) ([]byte, error) {
	cf, err := parseClientFirst(msg)
	if err != nil {
		return nil, failAuth(cf.user, "malformed SCRAM client-first message: %v", err)
	}
	s.gs2Header, s.clientFirstBare, s.name = cf.gs2Header, cf.bare, cf.user
	if u, ok := s.users.User(cf.user); ok {
		if c, ok := u.SCRAM[s.mechanism]; ok {
			s.user, s.cred = u, c
		}
	}
	if s.user == nil {
		s.cred = SCRAMCredential{Salt: hmacSum(s.h, s.decoy, []byte(s.mechanism+"\x00"+cf.user))[:16], Iterations: MinSCRAMIterations}
	}
	if s.serverNonce == "" {
		var nb [24]byte
		if _, err := rand.Read(nb[:]); err != nil {
			return nil, failAuth(cf.user, "cannot make a SCRAM nonce: %v", err)
		}
		s.serverNonce = base64.RawStdEncoding.EncodeToString(nb[:])
	}
	s.clientNonce, s.nonce = cf.nonce, cf.nonce+s.serverNonce
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(s.cred.Salt) + ",i=" + strconv.Itoa(s.cred.Iterations)
	return []byte(s.serverFirst), nil
}

func (s *scramServer) final(msg string) ([]byte, *RelayUser, error) {
	cf, err := parseClientFinal(msg)
	if err != nil {
		return nil, nil, failAuth(s.name, "malformed SCRAM client-final message: %v", err)
	}
	if cf.channelBinding != s.gs2Header {
		return nil, nil, failAuth(s.name, "SCRAM channel binding does not repeat the client-first header")
	}
	// RFC 5802 §5.1: the client repeats the nonce of server-first.
	// librdkafka before 2.6.1 sends its own part twice (client nonce +
	// the whole nonce; fixed by confluentinc/librdkafka#4895), and Kafka
	// accepts that since 3.8.1 (apache/kafka commit 0a00456, endsWith);
	// the relay accepts exactly that form too, for kcat and the shippers
	// built on older librdkafka (Debian 12 ships 2.0.2).
	if cf.nonce != s.nonce && cf.nonce != s.clientNonce+s.nonce {
		return nil, nil, failAuth(s.name, "SCRAM nonce differs from the one the server sent")
	}
	if s.user == nil {
		return nil, nil, failAuth(s.name, "unknown user or no %s credential", s.mechanism)
	}
	authMessage := []byte(s.clientFirstBare + "," + s.serverFirst + "," + cf.withoutProof)
	signature := hmacSum(s.h, s.cred.StoredKey, authMessage)
	if len(cf.proof) != len(signature) {
		return nil, nil, failAuth(s.name, "invalid SCRAM proof")
	}
	clientKey := make([]byte, len(signature))
	subtle.XORBytes(clientKey, cf.proof, signature)
	if subtle.ConstantTimeCompare(hashSum(s.h, clientKey), s.cred.StoredKey) != 1 {
		return nil, nil, failAuth(s.name, "invalid SCRAM proof")
	}
	serverSig := hmacSum(s.h, s.cred.ServerKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), s.user, nil
}

// clientFirst is a parsed client-first-message.
type clientFirst struct {
	gs2Header string // "n,," or "y,," with an optional a=authzid
	bare      string // client-first-message-bare
	user      string // decoded saslname
	nonce     string
}

// maxSCRAMName bounds user names so logs and decoy salts stay small.
const maxSCRAMName = 256

// parseClientFirst reads gs2-header client-first-message-bare (RFC 5802
// §7). Channel binding ("p=") is refused: Kafka clients never ask for it.
func parseClientFirst(msg string) (clientFirst, error) {
	var cf clientFirst
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return cf, errors.New("no gs2 header")
	}
	switch {
	case flag == "n" || flag == "y":
	case strings.HasPrefix(flag, "p="):
		return cf, errors.New("channel binding is not supported")
	default:
		return cf, errors.New("bad gs2 channel binding flag")
	}
	authzid, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return cf, errors.New("gs2 header has no authzid field")
	}
	if authzid != "" && !strings.HasPrefix(authzid, "a=") {
		return cf, errors.New("bad gs2 authzid field")
	}
	cf.gs2Header, cf.bare = flag+","+authzid+",", bare
	fields := strings.Split(bare, ",")
	if len(fields) < 2 {
		return cf, errors.New("client-first needs n= and r=")
	}
	if strings.HasPrefix(fields[0], "m=") {
		return cf, errors.New("mandatory extension not supported")
	}
	name, ok := strings.CutPrefix(fields[0], "n=")
	if !ok {
		return cf, errors.New("client-first does not start with n=")
	}
	user, err := decodeSASLName(name)
	if err != nil {
		return cf, err
	}
	if user == "" || len(user) > maxSCRAMName {
		return cf, fmt.Errorf("user name is empty or longer than %d bytes", maxSCRAMName)
	}
	cf.user = user
	if authzid != "" {
		if z, err := decodeSASLName(authzid[2:]); err != nil || z != user {
			return cf, errors.New("the authorization id differs from the user name")
		}
	}
	nonce, ok := strings.CutPrefix(fields[1], "r=")
	if !ok || !printableNonce(nonce) {
		return cf, errors.New("missing or bad client nonce")
	}
	cf.nonce = nonce
	// Further fields are extensions (KIP-84: tokenauth=true for
	// delegation tokens, which the relay does not have).
	for _, ext := range fields[2:] {
		if strings.HasPrefix(ext, "tokenauth=") {
			return cf, errors.New("delegation tokens are not supported")
		}
	}
	return cf, nil
}

// clientFinal is a parsed client-final-message.
type clientFinal struct {
	channelBinding string // decoded c=
	nonce          string
	proof          []byte
	withoutProof   string
}

// parseClientFinal reads channel-binding,nonce[,extensions],proof (RFC 5802
// §7); the proof must come last.
func parseClientFinal(msg string) (clientFinal, error) {
	var cf clientFinal
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return cf, errors.New("no proof")
	}
	cf.withoutProof = msg[:i]
	proof, err := base64.StdEncoding.DecodeString(msg[i+3:])
	if err != nil {
		return cf, errors.New("proof is not base64")
	}
	cf.proof = proof
	fields := strings.Split(cf.withoutProof, ",")
	if len(fields) < 2 {
		return cf, errors.New("client-final needs c= and r=")
	}
	c, ok := strings.CutPrefix(fields[0], "c=")
	if !ok {
		return cf, errors.New("client-final does not start with c=")
	}
	cb, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return cf, errors.New("channel binding is not base64")
	}
	cf.channelBinding = string(cb)
	if cf.nonce, ok = strings.CutPrefix(fields[1], "r="); !ok {
		return cf, errors.New("client-final has no r= after c=")
	}
	return cf, nil
}

// decodeSASLName undoes saslname's escapes: "=2C" is ',' and "=3D" is '='
// (RFC 5802 §5.1); any other '=' is an error.
func decodeSASLName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", errors.New("bad '=' escape in user name")
		}
		i += 2
	}
	return b.String(), nil
}

// printableNonce: RFC 5802's printable, %x21-2B / %x2D-7E (no ',').
func printableNonce(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}
