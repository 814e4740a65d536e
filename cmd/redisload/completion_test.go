package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The bash script loads in bash and completes what a user types: the
// subcommands, each command's own flags (not another's), the values of
// flags with a fixed set in both spellings, files for a path.
func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash here")
	}
	code, script, errs := invoke(t, context.Background(), "completion", "bash")
	if code != exitPass || errs != "" {
		t.Fatalf("exit %d: %s", code, errs)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "redisload.bash")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "result.json"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Each case is the words typed, the last the one being completed.
	cases := []struct{ words, want string }{
		{"redisload capacity --reso", "--resolution"},
		{"redisload --repe", "--repeat"},
		{"redisload --format ''", "table html json junit markdown"},
		{"redisload --format = j", "json junit"},
		{"redisload compare --format = ''", "table html json junit markdown"},
		{"redisload comp", "compare completion"},
		{"redisload completion ''", "bash zsh fish"},
		{"redisload compare --ins", ""}, // a run's flag, not compare's
		{"redisload --instances 5 --dur", "--duration"},
		{"redisload --redis s", "server sentinel"},
		{"redisload capacity --vary ''", "rate instances"},
		{"redisload --baseline res", "result.json"},
		{"redisload worker --on", "--once"},
	}
	var prog strings.Builder
	prog.WriteString("source " + path + "\ncd " + dir + "\n")
	for _, c := range cases {
		prog.WriteString("COMP_WORDS=(" + c.words + "); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMPREPLY=(); _redisload; echo \"${COMPREPLY[*]}\"\n")
	}
	out, err := exec.Command(bash, "--norc", "--noprofile", "-c", prog.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("%d lines for %d cases:\n%s", len(lines), len(cases), out)
	}
	for i, c := range cases {
		if lines[i] != c.want {
			t.Errorf("%s: %q, want %q", c.words, lines[i], c.want)
		}
	}
}

// zsh takes the bash script through bashcompinit; fish has a line per
// flag of every command. Each is checked by the shell where it is
// installed, and as text everywhere.
func TestCompletionZshFish(t *testing.T) {
	code, zsh, _ := invoke(t, context.Background(), "completion", "zsh")
	if code != exitPass || !strings.Contains(zsh, "bashcompinit") || !strings.Contains(zsh, "complete -F _redisload redisload") {
		t.Fatalf("exit %d:\n%.300s", code, zsh)
	}
	code, fish, _ := invoke(t, context.Background(), "completion", "fish")
	if code != exitPass {
		t.Fatalf("exit %d", code)
	}
	// Every visible flag of every command has its line.
	for _, c := range completionCommands() {
		words, _ := flagWords(c.fs)
		for _, w := range words {
			if strings.HasPrefix(w, "--") && !strings.Contains(fish, " -l "+w[2:]+" ") {
				t.Errorf("fish: no line for %q's %s", c.name, w)
			}
		}
	}
	if !strings.Contains(fish, "-l resolution -r -d ") || !strings.Contains(fish, "-l format -r -f -a 'table html json junit markdown'") {
		t.Errorf("fish script:\n%.600s", fish)
	}
	for shell, script := range map[string]string{"zsh": zsh, "fish": fish} {
		bin, err := exec.LookPath(shell)
		if err != nil {
			continue // not installed: the text checks above stand
		}
		cmd := exec.Command(bin, "-c", "source /dev/stdin")
		cmd.Stdin = bytes.NewBufferString(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s does not load its script: %v\n%s", shell, err, out)
		}
	}
}

func TestCompletionUsage(t *testing.T) {
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		code, _, errs := invoke(t, context.Background(), args...)
		if code != exitUsage || strings.Count(errs, "\n") != 2 || !strings.Contains(errs, "want one shell, bash, zsh, fish") {
			t.Errorf("%v: exit %d, %q", args, code, errs)
		}
	}
	if code, out, _ := invoke(t, context.Background(), "completion", "--help"); code != exitPass || !strings.Contains(out, "source <(redisload completion bash)") {
		t.Errorf("--help: exit %d %q", code, out)
	}
}
