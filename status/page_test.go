package status

import (
	"bytes"
	"html/template"
	"testing"
)

// TestPageAsHTMLTemplate: the page is byte for byte what html/template renders from
// the same shell, also for site names and versions that try to break out of the
// text or the attribute they land in.
func TestPageAsHTMLTemplate(t *testing.T) {
	tmpl := template.Must(template.New("status").Parse(string(pageShell)))
	for _, v := range [][2]string{
		{"Solbakken", "v1.2.3"},
		{`"><script>alert(1)</script>`, `1.0+<b>'x'</b>`},
		{"Sjukhem & Co \x00 ' \" < > +", "dev"},
		{"{{.Version}}", "{{"},
		{"", ""},
	} {
		var want bytes.Buffer
		if err := tmpl.Execute(&want, map[string]string{"Site": v[0], "Version": v[1]}); err != nil {
			t.Fatal(err)
		}
		if got := renderPage(pageShell, v[0], v[1]); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("site %q, version %q:\n got %s\nwant %s", v[0], v[1], got, want.Bytes())
		}
	}
}

// FuzzRenderPage: whatever the two values, the page is what html/template renders.
func FuzzRenderPage(f *testing.F) {
	f.Add("Solbakken", "v1")
	f.Add(`<a href="x">`, "'+'")
	tmpl := template.Must(template.New("status").Parse(string(pageShell)))
	f.Fuzz(func(t *testing.T, site, version string) {
		var want bytes.Buffer
		if err := tmpl.Execute(&want, map[string]string{"Site": site, "Version": version}); err != nil {
			t.Skip() // html/template failed: nothing to compare with
		}
		if got := renderPage(pageShell, site, version); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("site %q, version %q differ from html/template", site, version)
		}
	})
}
