package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestEnvoyConfigsUseTheDefaultPorts: the shipped Envoy configs point at
// the ports `gatehouse serve` and whoami listen on by default, and listen
// where the README sends curl, so `make run`, whoami and `envoy -c
// envoy/envoy.yaml` work together as they are. The ports are read from the
// code (serve's defaults, whoami's -h), not repeated here. (envoy/'s own
// tests check the configs against Envoy's schema.)
func TestEnvoyConfigsUseTheDefaultPorts(t *testing.T) {
	_, whoamiBin := binaries(t)
	out, _ := exec.Command(whoamiBin, "-h").CombinedOutput()
	m := regexp.MustCompile(`(?s)-addr address\s.*?\(default "([^"]+)"\)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no -addr default in whoami -h:\n%s", out)
	}
	cfg := defaultServeConfig()
	want := map[string]string{
		"gatehouse_authz": portOf(t, cfg.AuthzAddr),
		"gatehouse_http":  portOf(t, cfg.HTTPAddr),
		"whoami":          portOf(t, string(m[1])),
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	curlPort := regexp.MustCompile(`curl -i localhost:(\d+)/`).FindSubmatch(readme)
	if curlPort == nil {
		t.Fatal("README: no `curl -i localhost:PORT/` in the walkthrough")
	}

	for _, file := range []string{"envoy.yaml", "envoy-jwt-authn.yaml"} {
		t.Run(file, func(t *testing.T) {
			var doc struct {
				StaticResources struct {
					Listeners []struct {
						Address socketAddr `json:"address"`
					} `json:"listeners"`
					Clusters []struct {
						Name           string `json:"name"`
						LoadAssignment struct {
							Endpoints []struct {
								LbEndpoints []struct {
									Endpoint struct {
										Address socketAddr `json:"address"`
									} `json:"endpoint"`
								} `json:"lb_endpoints"`
							} `json:"endpoints"`
						} `json:"load_assignment"`
					} `json:"clusters"`
				} `json:"static_resources"`
			}
			raw, err := os.ReadFile(filepath.Join("../../envoy", file))
			if err != nil {
				t.Fatal(err)
			}
			js, err := yaml.YAMLToJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(js, &doc); err != nil {
				t.Fatal(err)
			}
			if n := len(doc.StaticResources.Listeners); n != 1 || fmt.Sprint(doc.StaticResources.Listeners[0].Address.Socket.Port) != string(curlPort[1]) {
				t.Errorf("listeners %+v, want one on the README's port %s", doc.StaticResources.Listeners, curlPort[1])
			}
			seen := map[string]bool{}
			for _, c := range doc.StaticResources.Clusters {
				port, ok := want[c.Name]
				if !ok {
					continue
				}
				seen[c.Name] = true
				for _, e := range c.LoadAssignment.Endpoints {
					for _, lb := range e.LbEndpoints {
						if got := fmt.Sprint(lb.Endpoint.Address.Socket.Port); got != port {
							t.Errorf("cluster %s points at port %s, the default is %s", c.Name, got, port)
						}
					}
				}
			}
			for _, name := range []string{"gatehouse_authz", "whoami"} {
				if !seen[name] {
					t.Errorf("no cluster %s", name)
				}
			}
		})
	}
}

type socketAddr struct {
	Socket struct {
		Address string `json:"address"`
		Port    int    `json:"port_value"`
	} `json:"socket_address"`
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
