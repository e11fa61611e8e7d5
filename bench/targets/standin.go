package targets

import (
	"encoding/json"
	"os"

	"github.com/slsrelay/slsrelay/bench/slsfake"
)

// StandInChildFlag is the flag the bench's executable is re-executed with
// to run the SLS stand-in of the relay-e2e target as a process of its own:
// its lz4 decompression, protobuf decoding and storing then count neither
// in the relay's CPU nor in the load generator's, and the relay reaches it
// over a real socket from another process, as it reaches SLS.
const StandInChildFlag = "-standin-child"

// StandInInfo is where a stand-in child listens: Addr its socket, Endpoint
// the SDK endpoint (see slsfake.NewHTTPClient).
type StandInInfo struct {
	Addr     string `json:"addr"`
	Endpoint string `json:"endpoint"`
	PID      int    `json:"pid"`
}

// RunStandInChild is the stand-in child's main: serve StandInConfig on a
// free loopback port, print its StandInInfo as a JSON line, and stop when
// stdin closes.
func RunStandInChild() error {
	s, err := slsfake.New(StandInConfig())
	if err != nil {
		return err
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		return err
	}
	json.NewEncoder(os.Stdout).Encode(StandInInfo{Addr: s.Addr(), Endpoint: s.Endpoint(), PID: os.Getpid()})
	<-stdinClosed()
	return s.Close()
}

// ChildStandIn is a stand-in running in a child process (RunStandInChild),
// reached through its socket (slsfake.Remote).
type ChildStandIn struct {
	*slsfake.Remote
	Info  StandInInfo
	child *child
}

// StartStandInChild runs exe StandInChildFlag and waits for its
// StandInInfo.
func StartStandInChild(exe string) (*ChildStandIn, error) {
	s := &ChildStandIn{}
	c, err := startChild("stand-in", exe, []string{StandInChildFlag}, nil, &s.Info, nil)
	if err != nil {
		return nil, err
	}
	s.child, s.Info.PID = c, c.pid()
	s.Remote = slsfake.NewRemote(s.Info.Addr, s.Info.Endpoint)
	return s, nil
}

// Close stops the child (see child.close).
func (s *ChildStandIn) Close() error { return s.child.close() }
