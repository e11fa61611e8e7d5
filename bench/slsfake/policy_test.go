package slsfake

import (
	"errors"
	"strings"
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

const otherProj = "other-project"

// policyConfig is testConfig plus a second project and keys granted through
// the Kafka preset and through RAM statements.
func policyConfig() Config {
	cfg := testConfig()
	cfg.Projects = append(cfg.Projects, ProjectConfig{Name: otherProj, Logstores: []LogstoreConfig{{Name: ls1}}})
	cfg.AccessKeys = append(cfg.AccessKeys,
		AccessKeyConfig{ID: "kafka", Secret: "kafka-secret", KafkaUpload: []string{proj}},
		AccessKeyConfig{ID: "getter", Secret: "getter-secret", Policy: []Statement{
			{Action: []string{"log:Get*"}, Resource: []string{"acs:log:*:*:project/" + proj + "/logstore/" + ls1}},
		}},
		AccessKeyConfig{ID: "all-but", Secret: "all-but-secret", Policy: []Statement{
			{Effect: "Allow", Action: []string{"log:*"}, Resource: []string{"*"}},
			{Effect: "Deny", Action: []string{"log:PostLogStoreLogs"}, Resource: []string{"acs:log:*:*:project/*/logstore/" + ls2}},
		}},
	)
	return cfg
}

// sdkCalls runs one SDK call per operation the stand-in serves on
// project/logstore.
var sdkCalls = map[string]func(c *sls.Client, project, logstore string) error{
	OpGetProject: func(c *sls.Client, p, _ string) error { _, err := c.GetProject(p); return err },
	OpListLogStores: func(c *sls.Client, p, _ string) error {
		_, err := c.ListLogStore(p)
		return err
	},
	OpGetLogStore: func(c *sls.Client, p, l string) error { _, err := c.GetLogStore(p, l); return err },
	OpListShards:  func(c *sls.Client, p, l string) error { _, err := c.ListShards(p, l); return err },
	OpPutLogs: func(c *sls.Client, p, l string) error {
		return c.PostLogStoreLogs(p, l, groupOf(1, "content", "x"), nil)
	},
	OpGetCursor: func(c *sls.Client, p, l string) error { _, err := c.GetCursor(p, l, 0, "begin"); return err },
	OpPullLogs: func(c *sls.Client, p, l string) error {
		_, _, err := c.PullLogs(p, l, 0, "MTAwMA==", "", 1)
		return err
	},
	// Shard 3 of a 4-shard logstore starts at c0…, so e0… is inside it.
	OpSplitShard: func(c *sls.Client, p, l string) error {
		_, err := c.SplitShard(p, l, 3, "e0000000000000000000000000000000")
		return err
	},
	OpMergeShards: func(c *sls.Client, p, l string) error { _, err := c.MergeShards(p, l, 0); return err },
}

// TestRAMPolicy checks each operation against each way of granting it,
// through the SDK: allowed calls pass (or fail for another reason than
// permission), denied ones get SLS's 401 Unauthorized naming the action and
// the resource.
func TestRAMPolicy(t *testing.T) {
	s := start(t, policyConfig())
	f := func(key, op, project, logstore string, allow bool, wantAction string) {
		t.Run(key+" "+op+" "+project+"/"+logstore, func(t *testing.T) {
			err := sdkCalls[op](client(s, key, key+"-secret"), project, logstore)
			var e *sls.Error
			isDenied := err != nil && errorsAs(err, &e) && e.HTTPCode == 401 && e.Code == "Unauthorized" &&
				strings.HasPrefix(e.Message, "denied by sts or ram")
			if allow {
				if isDenied {
					t.Fatalf("denied: %s", e.Message)
				}
				// A cursor the stand-in never issued is the only other
				// error an allowed call may get here.
				if err != nil && !(op == OpPullLogs && e != nil && e.Code == "InvalidCursor") {
					t.Fatalf("got %v", err)
				}
				return
			}
			if !isDenied {
				t.Fatalf("got %v, want 401 Unauthorized denied by sts or ram", err)
			}
			res := "acs:log:cn-local:" + AccountID + ":project/" + project
			if logstore != "" && op != OpGetProject && op != OpListLogStores {
				res += "/logstore/" + logstore
			}
			if op == OpListLogStores {
				res += "/logstore/*"
			}
			want := "denied by sts or ram, action: " + wantAction + ", resource: " + res
			if e.Message != want {
				t.Fatalf("message %q, want %q", e.Message, want)
			}
		})
	}
	// The Kafka endpoint's documented policy: exactly these four actions.
	f("kafka", OpGetProject, proj, "", true, "")
	f("kafka", OpGetLogStore, proj, ls1, true, "")
	f("kafka", OpListShards, proj, ls2, true, "")
	f("kafka", OpPutLogs, proj, ls1, true, "")
	f("kafka", OpListLogStores, proj, "", false, "log:ListLogStores")
	f("kafka", OpGetCursor, proj, ls1, false, "log:GetCursorOrData")
	f("kafka", OpPullLogs, proj, ls1, false, "log:GetCursorOrData")
	f("kafka", OpGetProject, otherProj, "", false, "log:GetProject")
	f("kafka", OpPutLogs, otherProj, ls1, false, "log:PostLogStoreLogs")

	// A statement with wildcards in the action, on one logstore.
	f("getter", OpGetLogStore, proj, ls1, true, "")
	f("getter", OpGetCursor, proj, ls1, true, "") // log:GetCursorOrData matches log:Get*
	f("getter", OpPullLogs, proj, ls1, true, "")
	f("getter", OpGetLogStore, proj, ls2, false, "log:GetLogStore")
	f("getter", OpListShards, proj, ls1, false, "log:ListShards")
	f("getter", OpGetProject, proj, "", false, "log:GetProject")
	f("getter", OpPutLogs, proj, ls1, false, "log:PostLogStoreLogs")

	// Deny wins over Allow.
	f("all-but", OpPutLogs, proj, ls1, true, "")
	f("all-but", OpPutLogs, proj, ls2, false, "log:PostLogStoreLogs")
	f("all-but", OpPutLogs, otherProj, ls1, true, "")
	f("all-but", OpListLogStores, otherProj, "", true, "")

	// The read/write shorthand maps onto the same actions.
	f("reader", OpGetProject, proj, "", true, "")
	f("reader", OpListLogStores, proj, "", true, "")
	f("reader", OpGetCursor, proj, ls1, true, "")
	f("reader", OpPutLogs, proj, ls1, false, "log:PostLogStoreLogs")
	f("reader", OpGetProject, otherProj, "", false, "log:GetProject")
	f("writer", OpPutLogs, proj, ls2, true, "")
	f("writer", OpListShards, proj, ls1, false, "log:ListShards")
	f("writer", OpPullLogs, proj, ls1, false, "log:GetCursorOrData")
	f("reader", OpSplitShard, proj, ls2, false, "log:SplitShard")
	f("reader", OpMergeShards, proj, ls2, false, "log:MergeShards")
	f("kafka", OpSplitShard, proj, ls2, false, "log:SplitShard")
	f("writer", OpSplitShard, proj, ls2, true, "")
	f("writer", OpMergeShards, proj, ls2, true, "")

	// ListProject needs log:ListProject and lists the projects the key may
	// GetProject.
	names, err := client(s, "reader", "reader-secret").ListProject()
	if err != nil || len(names) != 1 || names[0] != proj {
		t.Fatalf("reader ListProject = %v, %v; want [%s]", names, err, proj)
	}
	if names, err := demoClient(s).ListProject(); err != nil || len(names) != 2 {
		t.Fatalf("demo ListProject = %v, %v; want both projects", names, err)
	}
	_, err = client(s, "kafka", "kafka-secret").ListProject()
	if e := slsErr(t, err); e.HTTPCode != 401 || !strings.Contains(e.Message, "action: log:ListProject, resource: acs:log:cn-local:"+AccountID+":project/*") {
		t.Fatalf("kafka ListProject: %d %s", e.HTTPCode, e.Message)
	}
}

func TestPolicyConfig(t *testing.T) {
	f := func(name string, st Statement, wantErr bool) {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.AccessKeys = append(cfg.AccessKeys, AccessKeyConfig{ID: "p", Secret: "s", Policy: []Statement{st}})
			if _, err := New(cfg); (err != nil) != wantErr {
				t.Fatalf("New: %v, want error %v", err, wantErr)
			}
		})
	}
	f("good", Statement{Action: []string{"log:*"}, Resource: []string{"*"}}, false)
	f("bad effect", Statement{Effect: "Maybe", Action: []string{"log:*"}, Resource: []string{"*"}}, true)
	f("no action", Statement{Resource: []string{"*"}}, true)
	f("no resource", Statement{Action: []string{"log:*"}}, true)

	// The YAML form.
	cfg, err := ParseConfig([]byte(`
accessKeys:
  - id: k
    secret: s
    kafkaUpload: [test-project-1]
    policy:
      - effect: Deny
        action: ["log:PostLogStoreLogs"]
        resource: ["acs:log:*:*:project/test-project-1/logstore/x"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if k := cfg.AccessKeys[0]; len(k.KafkaUpload) != 1 || len(k.Policy) != 1 || k.Policy[0].Effect != "Deny" {
		t.Fatalf("parsed %+v", k)
	}
}

func TestGlobMatch(t *testing.T) {
	f := func(pattern, s string, want bool) {
		t.Helper()
		if got := globMatch(pattern, s); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, want %v", pattern, s, got, want)
		}
	}
	f("*", "", true)
	f("*", "acs:log:x:1:project/p/logstore/l", true)
	f("acs:log:*:*:project/p/*", "acs:log:cn:1:project/p/logstore/l", true)
	f("acs:log:*:*:project/p/*", "acs:log:cn:1:project/p", false)
	f("acs:log:*:*:project/p", "acs:log:cn:1:project/pp", false)
	f("log:get*", "log:getcursorordata", true)
	f("a*b*c", "aXbYc", true)
	f("a*b*c", "aXbY", false)
}

func errorsAs(err error, e **sls.Error) bool { return errors.As(err, e) }
