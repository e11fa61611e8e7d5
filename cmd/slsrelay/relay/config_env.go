package relay

import (
	"fmt"
	"os"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// envRef is ${NAME}: the only expansion done, so a '$' elsewhere in a
// value stays as written.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnvNodes replaces ${NAME} in scalar values (not in keys or
// comments) with the environment variable's value; an unset variable is an
// error rather than an empty secret.
func expandEnvNodes(n *yaml.Node) error {
	var missing []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			v := envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
				name := envRef.FindStringSubmatch(m)[1]
				v, ok := os.LookupEnv(name)
				if !ok {
					missing = append(missing, name)
				}
				return v
			})
			if v != n.Value {
				n.Value = v
				// A plain `${N}` was read as a string; let the expanded
				// value be typed anew, so `node_id: ${POD_INDEX}` is a number.
				if n.Style == 0 && n.Tag == "!!str" {
					n.Tag = ""
				}
			}
			return
		}
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				continue // a key
			}
			walk(c)
		}
	}
	walk(n)
	if len(missing) > 0 {
		return fmt.Errorf("environment variables not set: %v", missing)
	}
	return nil
}
