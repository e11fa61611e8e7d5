package slsfake

import (
	"fmt"
	"net/http"
	"sync/atomic"
)

// KeyState is the state of an AccessKey, changeable at run time
// (Server.SetKeyState, POST /_keystate) so a test can turn a key off and on.
type KeyState string

const (
	// KeyEnabled is a key that works (the default).
	KeyEnabled KeyState = "enabled"
	// KeyDisabled is an AccessKey its owner disabled in the console.
	KeyDisabled KeyState = "disabled"
	// KeyExpired is an STS credential past its expiry.
	KeyExpired KeyState = "expired"
)

// ProjectState is the state of a project (Server.SetProjectState,
// POST /_projectstate).
type ProjectState string

const (
	// ProjectNormal is a project that serves (the default).
	ProjectNormal ProjectState = "normal"
	// ProjectForbidden is a project of an account with an overdue payment:
	// 401 Unauthorized "Your SLS service has been forbidden." ("your Log
	// Service resources are disabled. Make sure that your Alibaba Cloud
	// account has no overdue payments", common error codes,
	// https://www.alibabacloud.com/help/en/sls/developer-reference/error-codes;
	// the stand-in applies it per project, so a test can keep others
	// working).
	ProjectForbidden ProjectState = "forbidden"
	// ProjectForbidden403 is the other reading: 403 ProjectForbidden, a
	// code the SDK defines (error_code.go PROJECT_FORBIDDEN) and iLogtail's
	// sender names, with no page saying when SLS sends it; the status 403
	// is the stand-in's guess.
	ProjectForbidden403 ProjectState = "forbidden403"
)

// accessKey is a configured AccessKey with its policy compiled from the
// config (Projects, KafkaUpload and Policy) and its run-time state.
type accessKey struct {
	cfg    *AccessKeyConfig
	policy []Statement
	state  atomic.Value // KeyState
}

func newAccessKey(cfg *AccessKeyConfig) *accessKey {
	k := &accessKey{cfg: cfg, policy: cfg.grants()}
	k.state.Store(cfg.State.orDefault())
	return k
}

func (st KeyState) orDefault() KeyState {
	if st == "" {
		return KeyEnabled
	}
	return st
}

func (st KeyState) check() error {
	switch st.orDefault() {
	case KeyEnabled, KeyDisabled, KeyExpired:
		return nil
	}
	return fmt.Errorf("unknown key state %q (want %s, %s or %s)", st, KeyEnabled, KeyDisabled, KeyExpired)
}

func (st ProjectState) orDefault() ProjectState {
	if st == "" {
		return ProjectNormal
	}
	return st
}

func (st ProjectState) check() error {
	switch st.orDefault() {
	case ProjectNormal, ProjectForbidden, ProjectForbidden403:
		return nil
	}
	return fmt.Errorf("unknown project state %q (want %s, %s or %s)", st, ProjectNormal, ProjectForbidden, ProjectForbidden403)
}

// checkState is run once the signature holds. The answers are the common
// error codes page's (https://www.alibabacloud.com/help/en/sls/developer-reference/error-codes,
// 401 Unauthorized): "AccessKeyId is disabled: <id>", "The security token
// you provided has expired.", "The security token you provided is
// invalid." The SDK treats every 401 as a credential problem worth
// refreshing an STS token for (aliyun-log-go-sdk client.go IsTokenError).
func (k *accessKey) checkState(r *http.Request) *APIError {
	switch k.state.Load().(KeyState) {
	case KeyDisabled:
		return unauthorized("AccessKeyId is disabled: " + k.cfg.ID)
	case KeyExpired:
		return unauthorized("The security token you provided has expired.")
	}
	if k.cfg.SecurityToken != "" && r.Header.Get("x-acs-security-token") != k.cfg.SecurityToken {
		return unauthorized("The security token you provided is invalid.")
	}
	return nil
}

// SetKeyState changes an AccessKey's state; it applies from the next
// request on.
func (s *Server) SetKeyState(id string, st KeyState) error {
	k, ok := s.keys[id]
	if !ok {
		return fmt.Errorf("cannot set the state of AccessKey %s: no such key", id)
	}
	if err := st.check(); err != nil {
		return fmt.Errorf("cannot set the state of AccessKey %s: %w", id, err)
	}
	k.state.Store(st.orDefault())
	return nil
}

// SetProjectState changes a project's state; it applies from the next
// request on.
func (s *Server) SetProjectState(name string, st ProjectState) error {
	p, ok := s.projects[name]
	if !ok {
		return fmt.Errorf("cannot set the state of project %s: no such project", name)
	}
	if err := st.check(); err != nil {
		return fmt.Errorf("cannot set the state of project %s: %w", name, err)
	}
	p.state.Store(st.orDefault())
	return nil
}

// projectRefusal is the answer for a project in state st, or nil.
func projectRefusal(project string, st ProjectState) *APIError {
	switch st {
	case ProjectForbidden:
		return unauthorized("Your SLS service has been forbidden.")
	case ProjectForbidden403:
		return &APIError{Status: http.StatusForbidden, Code: "ProjectForbidden",
			Message: fmt.Sprintf("Project %s is forbidden.", project)}
	}
	return nil
}
