package slsfake

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// postControl posts a JSON body to a control API path and returns the
// status.
func postControl(t *testing.T, s *Server, path, body string) int {
	t.Helper()
	resp, err := http.Post("http://"+s.Addr()+path, "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestKeyAndProjectStates turns keys and projects off and on at run time,
// from Go and from the control API, and checks SLS's answer through the
// SDK at each step.
func TestKeyAndProjectStates(t *testing.T) {
	cfg := testConfig()
	cfg.AccessKeys = append(cfg.AccessKeys, AccessKeyConfig{ID: "sts-id", Secret: "sts-secret", SecurityToken: "sts-token",
		Projects: map[string]Permission{"*": {Read: true, Write: true}}})
	s := start(t, cfg)
	sts := func(token string) func() error {
		return func() error {
			c := client(s, "sts-id", "sts-secret")
			c.SecurityToken = token // the SDK sends it as x-acs-security-token
			return c.PutLogs(proj, ls1, groupOf(1, "content", "x"))
		}
	}
	demoPut := func() error { return demoClient(s).PutLogs(proj, ls1, groupOf(1, "content", "x")) }
	demoGet := func() error { _, err := demoClient(s).GetProject(proj); return err }
	f := func(name string, change func() error, call func() error, status int, code, msgPart string) {
		t.Run(name, func(t *testing.T) {
			if change != nil {
				if err := change(); err != nil {
					t.Fatal(err)
				}
			}
			err := call()
			wantAnswer(t, err, status, code)
			if status != 0 && !strings.Contains(slsErr(t, err).Message, msgPart) {
				t.Fatalf("message %q, want it to say %q", slsErr(t, err).Message, msgPart)
			}
		})
	}
	viaControl := func(path, body string) func() error {
		return func() error {
			if code := postControl(t, s, path, body); code != 200 {
				t.Fatalf("POST %s %s: %d", path, body, code)
			}
			return nil
		}
	}
	goKey := func(id string, st KeyState) func() error { return func() error { return s.SetKeyState(id, st) } }
	goProject := func(p string, st ProjectState) func() error { return func() error { return s.SetProjectState(p, st) } }

	f("enabled key", nil, demoPut, 0, "", "")
	f("disabled from Go", goKey("demo-akid", KeyDisabled), demoPut, 401, "Unauthorized", "disabled")
	f("disabled key reads", nil, demoGet, 401, "Unauthorized", "disabled")
	f("other keys unaffected", nil, func() error {
		return client(s, "writer", "writer-secret").PutLogs(proj, ls1, groupOf(1, "content", "x"))
	}, 0, "", "")
	f("enabled from Go", goKey("demo-akid", KeyEnabled), demoPut, 0, "", "")
	f("disabled from control", viaControl("/_keystate", `{"id":"demo-akid","state":"disabled"}`), demoPut, 401, "Unauthorized", "disabled")
	f("enabled from control", viaControl("/_keystate", `{"id":"demo-akid","state":"enabled"}`), demoPut, 0, "", "")

	f("STS token", nil, sts("sts-token"), 0, "", "")
	f("STS without token", nil, sts(""), 401, "Unauthorized", "invalid")
	f("STS wrong token", nil, sts("other"), 401, "Unauthorized", "invalid")
	f("STS expired from Go", goKey("sts-id", KeyExpired), sts("sts-token"), 401, "Unauthorized", "expired")
	f("STS renewed", goKey("sts-id", KeyEnabled), sts("sts-token"), 0, "", "")
	f("STS expired from control", viaControl("/_keystate", `{"id":"sts-id","state":"expired"}`), sts("sts-token"), 401, "Unauthorized", "expired")

	f("project forbidden from Go", goProject(proj, ProjectForbidden), demoPut, 401, "Unauthorized", "Your SLS service has been forbidden.")
	f("forbidden project read", nil, demoGet, 401, "Unauthorized", "Your SLS service has been forbidden.")
	f("project normal from Go", goProject(proj, ProjectNormal), demoPut, 0, "", "")
	f("ProjectForbidden reading", goProject(proj, ProjectForbidden403), demoPut, 403, "ProjectForbidden", proj)
	f("project forbidden from control", viaControl("/_projectstate", `{"project":"`+proj+`","state":"forbidden403"}`), demoGet, 403, "ProjectForbidden", proj)
	f("project normal from control", viaControl("/_projectstate", `{"project":"`+proj+`","state":"normal"}`), demoGet, 0, "", "")

	t.Run("bad requests", func(t *testing.T) {
		g := func(err error) {
			t.Helper()
			if err == nil {
				t.Fatal("want an error")
			}
		}
		g(s.SetKeyState("nobody", KeyDisabled))
		g(s.SetKeyState("demo-akid", "sleepy"))
		g(s.SetProjectState("no-such-project", ProjectForbidden))
		g(s.SetProjectState(proj, "paused"))
		if code := postControl(t, s, "/_keystate", `{"id":"nobody","state":"disabled"}`); code != 400 {
			t.Fatalf("unknown key: %d, want 400", code)
		}
		if code := postControl(t, s, "/_projectstate", `{"project":"`+proj+`","state":"paused"}`); code != 400 {
			t.Fatalf("unknown state: %d, want 400", code)
		}
	})
}

// TestStatesFromConfig starts with a disabled key and a forbidden project.
func TestStatesFromConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
projects:
  - name: test-project-1
    state: forbidden
    logstores: [{name: test-logstore-1}]
accessKeys:
  - {id: demo-akid, secret: demo-aksecret, projects: {"*": {read: true, write: true}}}
  - {id: off, secret: off-secret, state: disabled, projects: {"*": {read: true}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, cfg)
	_, err = demoClient(s).GetProject(proj)
	wantAnswer(t, err, 401, "Unauthorized")
	_, err = client(s, "off", "off-secret").GetProject(proj)
	wantAnswer(t, err, 401, "Unauthorized")

	for _, bad := range []string{
		"accessKeys: [{id: k, secret: s, state: sleepy}]",
		"projects: [{name: pppp, state: paused, logstores: [{name: l}]}]",
	} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Fatalf("ParseConfig(%q) accepted it", bad)
		}
	}
}
