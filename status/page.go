package status

import (
	"bytes"
	"strings"
)

// The page shell is rendered by pageHTML, not by html/template: the shell holds
// two values, the site's name and the gateway's version, both in HTML text or a
// quoted attribute, and html/template's reflective method calls (text/template
// calls methods by name) keep every exported method of every type the binary
// reaches alive past the linker: 2.0 MB of the stripped arm64 binary and 1.1 MB of
// the load site's idle RSS (P4, measured interleaved, docs/benchmarks.md). The
// escaping is html/template's own for those contexts (htmlEscape below), which
// TestPageAsHTMLTemplate checks against html/template itself on hostile input.

// pageFields are the shell's placeholders, in html/template's syntax, so the asset
// stays readable as a template and the test can render it with html/template.
var pageFields = []string{"{{.Site}}", "{{.Version}}"}

// htmlEscape escapes s as html/template does in HTML text and quoted attribute
// values: NUL, quotes, ampersand, plus and angle brackets.
var htmlEscape = strings.NewReplacer(
	"\x00", "\uFFFD", `"`, "&#34;", "&", "&amp;", "'", "&#39;", "+", "&#43;", "<", "&lt;", ">", "&gt;",
).Replace

// renderPage fills the shell src with site and version.
func renderPage(src []byte, site, version string) []byte {
	vals := map[string]string{"{{.Site}}": htmlEscape(site), "{{.Version}}": htmlEscape(version)}
	var out bytes.Buffer
	for len(src) > 0 {
		i := bytes.Index(src, []byte("{{"))
		if i < 0 {
			out.Write(src)
			break
		}
		out.Write(src[:i])
		src = src[i:]
		matched := false
		for _, f := range pageFields {
			if bytes.HasPrefix(src, []byte(f)) {
				out.WriteString(vals[f])
				src = src[len(f):]
				matched = true
				break
			}
		}
		if !matched { // not a placeholder: keep it as written
			out.WriteString("{{")
			src = src[2:]
		}
	}
	return out.Bytes()
}
