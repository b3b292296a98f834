package config

// maxNesting bounds how deeply collections may nest in a file. A real configuration
// nests about 6 levels (drivers.serial[].rules[].text); goccy/go-yaml's memory grows
// much faster than the depth (1.9 million nested "[" in a 4 MiB file exhaust 6 GB),
// so the bound is checked on the raw text before the parser runs.
const maxNesting = 64

// tooDeep scans data for collections nested more than limit levels deep and returns
// the line where the limit is first exceeded, or ok. It is a cheap, one-pass
// approximation of YAML's structure, not a parser: it counts flow collections ([ and
// { outside quoted scalars and comments) and block levels (indentation, plus the
// compact "- ", "? " and ": " indicators that open a nested level on the same line),
// and skips quoted scalars, comments and the content of block scalars (| and >). Its
// errors lean towards counting less, never towards refusing a plain value that merely
// contains a bracket.
func tooDeep(data []byte, limit int) (line int, ok bool) {
	var (
		flow        int   // open flow collections
		indents     []int // columns of the open block levels
		quote       byte  // ' or " while inside a quoted scalar, else 0
		blockParent = -1  // while in a block scalar: the indentation of its key line
	)
	for lineNo, start := 1, 0; start < len(data); lineNo++ {
		end := start
		for end < len(data) && data[end] != '\n' {
			end++
		}
		l := data[start:end]
		start = end + 1
		if n := len(l); n > 0 && l[n-1] == '\r' {
			l = l[:n-1]
		}

		i := 0
		atValue := false // at the start of a node: a [ or { here opens a collection
		if quote == 0 && flow == 0 {
			for i < len(l) && l[i] == ' ' {
				i++
			}
			if i == len(l) || l[i] == '#' {
				continue // blank and comment lines change nothing
			}
			if blockParent >= 0 {
				if i > blockParent {
					continue // a line of a block scalar's text
				}
				blockParent = -1
			}
			indent := i
			for len(indents) > 0 && indents[len(indents)-1] >= indent {
				indents = indents[:len(indents)-1]
			}
			indents = append(indents, indent)
			// "- - - x" and "? ? x" nest one level per indicator.
			for i < len(l) && (l[i] == '-' || l[i] == '?' || l[i] == ':') && (i+1 == len(l) || l[i+1] == ' ' || l[i+1] == '\t') {
				i++
				for i < len(l) && (l[i] == ' ' || l[i] == '\t') {
					i++
				}
				if i < len(l) && l[i] != '#' {
					indents = append(indents, i)
				}
				if len(indents) > limit {
					return lineNo, false
				}
			}
			if len(indents) > limit {
				return lineNo, false
			}
			atValue = true
		}

		for ; i < len(l); i++ {
			c := l[i]
			if quote != 0 {
				switch {
				case quote == '"' && c == '\\':
					i++
				case c == quote && quote == '\'' && i+1 < len(l) && l[i+1] == '\'':
					i++ // '' inside a single-quoted scalar
				case c == quote:
					quote = 0
				}
				continue
			}
			spaceBefore := i == 0 || l[i-1] == ' ' || l[i-1] == '\t'
			if c == '#' && spaceBefore {
				break // a comment runs to the end of the line
			}
			if flow > 0 {
				switch c {
				case '[', '{':
					flow++
					if flow+len(indents) > limit {
						return lineNo, false
					}
				case ']', '}':
					flow--
				case '"', '\'':
					if spaceBefore || i > 0 && (l[i-1] == ',' || l[i-1] == '[' || l[i-1] == '{' || l[i-1] == ':') {
						quote = c
					}
				}
				continue
			}
			// Block context.
			switch {
			case c == ' ' || c == '\t':
			case atValue && (c == '[' || c == '{'):
				flow, atValue = 1, false
				if flow+len(indents) > limit {
					return lineNo, false
				}
			case atValue && (c == '"' || c == '\''):
				quote = c
				atValue = false
			case atValue && (c == '|' || c == '>'):
				blockParent = len(l) - len(trimLeftSpaces(l))
				i = len(l)
			case atValue && (c == '!' || c == '&'):
				// A tag or an anchor: the node itself follows.
				for i+1 < len(l) && l[i+1] != ' ' && l[i+1] != '\t' {
					i++
				}
			case c == ':' && (i+1 == len(l) || l[i+1] == ' ' || l[i+1] == '\t'):
				atValue = true // the value of a key on this line
			default:
				atValue = false // inside a plain scalar, brackets are text
			}
		}
	}
	return 0, true
}

func trimLeftSpaces(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	return b
}
