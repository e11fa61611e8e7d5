package configs_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// selector is one metric a PromQL expression reads, with its matchers.
type selector struct {
	name     string
	matchers []matcher
}

type matcher struct{ label, op, value string }

// exprRefs is what the name check needs from an expression: the series it
// selects and the labels it groups or joins by.
type exprRefs struct {
	selectors []selector
	grouping  []string
}

// promqlKeywords are words that are not metrics: operators, modifiers and
// the aggregation operators, which may be followed by "by (...)" rather
// than by their parenthesis.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true, "inf": true, "nan": true,
	"sum": true, "min": true, "max": true, "avg": true, "group": true,
	"stddev": true, "stdvar": true, "count": true, "count_values": true,
	"bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
}

// groupingWords take a parenthesised label list.
var groupingWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true,
}

// scanPromQL finds the selectors and grouping labels of a PromQL
// expression. It is a scanner, not a parser: it knows strings, label
// matchers, range brackets, function calls and grouping lists, which is
// all a metric-name check needs. promtool parses the same expressions for
// real (promtool_test.go).
func scanPromQL(expr string) (exprRefs, error) {
	var refs exprRefs
	s := []rune(expr)
	i := 0
	skipSpace := func() {
		for i < len(s) && unicode.IsSpace(s[i]) {
			i++
		}
	}
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(s, i)
			if err != nil {
				return refs, err
			}
			i = end
		case c == '[':
			end := slices.Index(s[i:], ']')
			if end < 0 {
				return refs, fmt.Errorf("unclosed [ in %q", expr)
			}
			i += end + 1
		case c == '{': // matchers without a metric name
			ms, end, err := scanMatchers(s, i)
			if err != nil {
				return refs, err
			}
			refs.selectors = append(refs.selectors, selector{matchers: ms})
			i = end
		case unicode.IsDigit(c) || (c == '.' && i+1 < len(s) && unicode.IsDigit(s[i+1])):
			for i < len(s) && (unicode.IsLetter(s[i]) || unicode.IsDigit(s[i]) || s[i] == '.' || s[i] == '_') {
				i++
			}
		case unicode.IsLetter(c) || c == '_' || c == ':':
			start := i
			for i < len(s) && (unicode.IsLetter(s[i]) || unicode.IsDigit(s[i]) || s[i] == '_' || s[i] == ':') {
				i++
			}
			word := string(s[start:i])
			skipSpace()
			next := rune(0)
			if i < len(s) {
				next = s[i]
			}
			switch {
			case groupingWords[word]:
				if next == '(' {
					end := slices.Index(s[i:], ')')
					if end < 0 {
						return refs, fmt.Errorf("unclosed %s( in %q", word, expr)
					}
					for _, l := range strings.Split(string(s[i+1:i+end]), ",") {
						if l = strings.TrimSpace(l); l != "" {
							refs.grouping = append(refs.grouping, l)
						}
					}
					i += end + 1
				}
			case promqlKeywords[word]:
			case next == '(': // a function
			default:
				sel := selector{name: word}
				if next == '{' {
					ms, end, err := scanMatchers(s, i)
					if err != nil {
						return refs, err
					}
					sel.matchers, i = ms, end
				}
				refs.selectors = append(refs.selectors, sel)
			}
		default:
			i++
		}
	}
	return refs, nil
}

func skipString(s []rune, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		if s[j] == '\\' && q != '`' {
			j++
			continue
		}
		if s[j] == q {
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unclosed string in %q", string(s))
}

var matcherRE = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$`)

// scanMatchers reads {label op "value", ...} starting at s[i] == '{'.
func scanMatchers(s []rune, i int) ([]matcher, int, error) {
	var ms []matcher
	j := i + 1
	start := j
	flush := func(end int) error {
		part := strings.TrimSpace(string(s[start:end]))
		if part == "" {
			return nil
		}
		m := matcherRE.FindStringSubmatch(part)
		if m == nil {
			return fmt.Errorf("cannot read label matcher %q", part)
		}
		ms = append(ms, matcher{label: m[1], op: m[2], value: m[3]})
		return nil
	}
	for j < len(s) {
		switch s[j] {
		case '"':
			end, err := skipString(s, j)
			if err != nil {
				return nil, 0, err
			}
			j = end
			continue
		case ',':
			if err := flush(j); err != nil {
				return nil, 0, err
			}
			start = j + 1
		case '}':
			if err := flush(j); err != nil {
				return nil, 0, err
			}
			return ms, j + 1, nil
		}
		j++
	}
	return nil, 0, fmt.Errorf("unclosed { in %q", string(s))
}
