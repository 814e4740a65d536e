package main

import "runtime/debug"

// version is set at build time with -ldflags "-X main.version=…" (make
// build does, from git describe).
var version = ""

// toolVersion says which build this is, in the reports too: the injected
// version; else the module version of `go install …@vX`; else the commit it
// was built from, "+dirty" when the tree had changes; else "dev".
func toolVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	// A build from a git checkout records its commit and whether the tree
	// had changes (go build -buildvcs, the default where git is found).
	var rev, dirty string
	for _, st := range bi.Settings {
		switch {
		case st.Key == "vcs.revision" && len(st.Value) >= 12:
			rev = st.Value[:12]
		case st.Key == "vcs.modified" && st.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev == "" {
		return "dev"
	}
	return "dev-" + rev + dirty
}
