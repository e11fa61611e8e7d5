package kubernetes_test

// The manifests decode (kubectl is not at hand to check them) and hold
// together as a fleet behind one address (README "Running a fleet"): the
// ConfigMap's relay.yaml loads as the relay loads it, every pod names the
// same broker and advertises the Service shippers use, a drain fits in the
// grace period and a draining pod leaves the Service within its linger.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
)

// manifest is the part of a Kubernetes object these checks read.
type manifest struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		// Service
		Type      string         `yaml:"type"`
		ClusterIP string         `yaml:"clusterIP"`
		Selector  map[string]any `yaml:"selector"` // a StatefulSet's holds matchLabels
		Ports     []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
		// StatefulSet
		ServiceName string `yaml:"serviceName"`
		Template    struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				Containers                    []struct {
					Name         string   `yaml:"name"`
					Args         []string `yaml:"args"`
					VolumeMounts []struct {
						MountPath string `yaml:"mountPath"`
						ReadOnly  bool   `yaml:"readOnly"`
					} `yaml:"volumeMounts"`
					Env []struct {
						Name string `yaml:"name"`
					} `yaml:"env"`
					Ports []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
					ReadinessProbe struct {
						HTTPGet struct {
							Path string `yaml:"path"`
							Port int    `yaml:"port"`
						} `yaml:"httpGet"`
						PeriodSeconds    int `yaml:"periodSeconds"`
						TimeoutSeconds   int `yaml:"timeoutSeconds"`
						FailureThreshold int `yaml:"failureThreshold"`
					} `yaml:"readinessProbe"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
	// Kustomization
	Resources []string `yaml:"resources"`
}

// load decodes every document of a manifest file, strictly: a key the
// structs above do not know is fine, a YAML error is not.
func load(t *testing.T, file string) []manifest {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []manifest
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if m.Kind == "" || m.APIVersion == "" {
			t.Fatalf("%s: a document without kind or apiVersion", file)
		}
		out = append(out, m)
	}
	return out
}

// objects decodes the files kustomization.yaml applies, by kind and name.
func objects(t *testing.T) map[string]manifest {
	t.Helper()
	kust := load(t, "kustomization.yaml")
	if len(kust) != 1 || kust[0].Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml: want one Kustomization, have %d documents", len(kust))
	}
	byName := map[string]manifest{}
	for _, file := range kust[0].Resources {
		for _, m := range load(t, file) {
			byName[m.Kind+"/"+m.Metadata.Name] = m
		}
	}
	// secret.yaml is a template left out of the kustomization on purpose,
	// but it must parse too.
	if ms := load(t, "secret.yaml"); len(ms) != 2 {
		t.Errorf("secret.yaml: %d documents, want the two Secrets", len(ms))
	}
	return byName
}

func get(t *testing.T, objs map[string]manifest, key string) manifest {
	t.Helper()
	m, ok := objs[key]
	if !ok {
		t.Fatalf("no %s in the manifests kustomization.yaml applies", key)
	}
	return m
}

// TestManifestsFleet: every pod's relay.yaml (as the StatefulSet's
// environment expands it) names broker 1, its own node_id and the Service
// "slsrelay" as its advertised address; that Service exists and selects
// the pods on the advertised port; a drain fits in the grace period; a
// draining pod fails its readiness probe before its linger is over.
func TestManifestsFleet(t *testing.T) {
	objs := objects(t)
	sts := get(t, objs, "StatefulSet/slsrelay")
	cm := get(t, objs, "ConfigMap/slsrelay")
	svc := get(t, objs, "Service/slsrelay")
	if len(sts.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("StatefulSet: %d containers, want 1", len(sts.Spec.Template.Spec.Containers))
	}
	ctr := sts.Spec.Template.Spec.Containers[0]

	// Every ${NAME} in relay.yaml is set by the container's environment.
	relayYAML := cm.Data["relay.yaml"]
	var env []string
	for _, e := range ctr.Env {
		env = append(env, e.Name)
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(relayYAML, -1) {
		if !slices.Contains(env, m[1]) {
			t.Errorf("relay.yaml uses ${%s}, which the StatefulSet's container does not set (it sets %v)", m[1], env)
		}
	}

	// The relay checks that the mounted files exist: the mounts
	// (/etc/slsrelay/…) move to a directory holding stand-ins for them.
	mounts := t.TempDir()
	for _, f := range regexp.MustCompile(`/etc/slsrelay/[^\s"]+`).FindAllString(relayYAML, -1) {
		path := filepath.Join(mounts, strings.TrimPrefix(f, "/etc/slsrelay/"))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	relayYAML = strings.ReplaceAll(relayYAML, "/etc/slsrelay/", mounts+"/")

	const namespace = "logging"
	t.Setenv("POD_NAMESPACE", namespace)
	var linger time.Duration
	var cfg *relay.Config
	for _, pod := range []int32{1, 2, 3} {
		t.Setenv("POD_INDEX", strconv.Itoa(int(pod)))
		var err error
		cfg, err = relay.ParseConfig("configmap.yaml relay.yaml", []byte(relayYAML))
		if err != nil {
			t.Fatalf("pod %d: %v", pod, err)
		}
		if cfg.NodeID != pod {
			t.Errorf("pod %d: node_id %d, want its ordinal", pod, cfg.NodeID)
		}
		if cfg.BrokerID != 1 {
			t.Errorf("pod %d: broker_id %d, want 1 on every pod", pod, cfg.BrokerID)
		}
		for _, l := range cfg.Listeners {
			want := fmt.Sprintf("%s.%s.svc:%d", svc.Metadata.Name, namespace, 9093)
			if l.Advertised != want {
				t.Errorf("pod %d: listener %s advertises %q, want the Service's %q", pod, l.Name, l.Advertised, want)
			}
			_, bindPort, _ := net.SplitHostPort(l.Bind)
			if bindPort != "9093" {
				t.Errorf("pod %d: listener %s binds %s, want port 9093 (the Service's target)", pod, l.Name, l.Bind)
			}
		}
		linger = cfg.Limits.DrainLinger
	}
	if linger <= 0 {
		t.Fatal("relay.yaml: set limits.drain_linger, which the probe and grace period are checked against")
	}

	// `kubectl exec <pod> -- slsrelay dlq …|wal status -config FILE` runs
	// as the container's user with its environment: FILE (the relay's
	// -config) is mounted, and the control socket it reaches the relay on
	// is on a writable volume (the root file system is read-only).
	under := func(path string, writable bool) bool {
		for _, m := range ctr.VolumeMounts {
			if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") && (!writable || !m.ReadOnly) {
				return true
			}
		}
		return false
	}
	if i := slices.Index(ctr.Args, "-config"); i < 0 || i+1 == len(ctr.Args) || !under(ctr.Args[i+1], false) {
		t.Errorf("container args %q: want -config with a file on a mounted volume, for kubectl exec's commands too", ctr.Args)
	}
	if sock := cfg.ControlSocket(); sock == "" || len(sock) > 107 || !under(sock, true) {
		t.Errorf("control socket %q: want one (admin.control_socket not off), on a writable volume, its path at most 107 bytes", sock)
	}

	// The Service carries all traffic: a ClusterIP over the pods, on 9093.
	if svc.Spec.Type != "ClusterIP" || svc.Spec.ClusterIP == "None" {
		t.Errorf("Service slsrelay: type %q clusterIP %q, want a ClusterIP Service (it carries all traffic)", svc.Spec.Type, svc.Spec.ClusterIP)
	}
	for k, v := range svc.Spec.Selector {
		if sts.Spec.Template.Metadata.Labels[k] != fmt.Sprint(v) {
			t.Errorf("Service slsrelay selects %s=%s, which the pods do not carry", k, v)
		}
	}
	served := false
	for _, p := range svc.Spec.Ports {
		for _, cp := range ctr.Ports {
			served = served || p.Port == 9093 && p.TargetPort == cp.Name && cp.ContainerPort == 9093
		}
	}
	if !served {
		t.Error("Service slsrelay does not forward port 9093 to the container's port 9093")
	}
	if sts.Spec.ServiceName == "" {
		t.Error("StatefulSet: no serviceName")
	} else {
		get(t, objs, "Service/"+sts.Spec.ServiceName)
	}

	// A draining pod answers /readyz 503 at once: it must fail the probe
	// and leave the Service with time to spare in its linger.
	rp := ctr.ReadinessProbe
	if rp.HTTPGet.Path != "/readyz" {
		t.Errorf("readinessProbe: path %q, want /readyz", rp.HTTPGet.Path)
	}
	if out := time.Duration(rp.PeriodSeconds*rp.FailureThreshold) * time.Second; out == 0 || out > linger/2 {
		t.Errorf("readinessProbe: %d s × %d failures to leave the Service, want at most half the drain linger (%v)", rp.PeriodSeconds, rp.FailureThreshold, linger)
	}
	// linger, then 20 s for requests in flight, then a PutLogs in flight
	// can take its 60 s request timeout (statefulset.yaml's comment).
	if grace, need := time.Duration(sts.Spec.Template.Spec.TerminationGracePeriodSeconds)*time.Second, linger+20*time.Second+60*time.Second; grace < need {
		t.Errorf("terminationGracePeriodSeconds %v, want at least %v", grace, need)
	}
}
