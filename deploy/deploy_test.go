package deploy

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// decode reads one manifest strictly: an unknown or duplicated field is an
// error, as kubectl apply --validate=strict would make it.
func decode(t *testing.T, name string, into any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("kubernetes", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := sigsyaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// Every file in kubernetes/ is one of the manifests checked here.
func TestEveryManifestIsChecked(t *testing.T) {
	names, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	want := []string{"config.yaml", "coordinator.yaml", "redis-secret.example.yaml", "workers.yaml"}
	if !slices.Equal(names, want) {
		t.Fatalf("manifests %v, want %v: a new one needs its checks here", names, want)
	}
}

// The manifests fit together: the workers Job is Indexed with one pod per
// worker the coordinator waits for, spread over nodes; both read the
// Redis URL from the Secret; every $(VAR) an argument uses is defined.
func TestManifests(t *testing.T) {
	var cm corev1.ConfigMap
	decode(t, "config.yaml", &cm)
	var secret corev1.Secret
	decode(t, "redis-secret.example.yaml", &secret)
	var workers, coordinator batchv1.Job
	decode(t, "workers.yaml", &workers)
	decode(t, "coordinator.yaml", &coordinator)

	if cm.Kind != "ConfigMap" || secret.Kind != "Secret" || workers.Kind != "Job" || coordinator.Kind != "Job" {
		t.Fatalf("kinds %q %q %q %q", cm.Kind, secret.Kind, workers.Kind, coordinator.Kind)
	}
	if _, ok := secret.StringData["url"]; !ok {
		t.Error("the Secret has no url")
	}
	ws := workers.Spec
	n := cm.Data["WORKERS"]
	if ws.CompletionMode == nil || *ws.CompletionMode != batchv1.IndexedCompletion ||
		ws.Parallelism == nil || ws.Completions == nil || itoa(*ws.Parallelism) != n || itoa(*ws.Completions) != n {
		t.Errorf("workers Job: completion mode %v, parallelism %v, completions %v; want Indexed, %s and %s",
			ws.CompletionMode, ws.Parallelism, ws.Completions, n, n)
	}
	aff := ws.Template.Spec.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 ||
		aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
		t.Error("the workers do not spread over nodes")
	}
	for _, job := range []batchv1.Job{workers, coordinator} {
		spec := job.Spec.Template.Spec
		if spec.RestartPolicy != corev1.RestartPolicyNever || job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit != 0 {
			t.Errorf("%s: a failed run must not be retried (restart %q)", job.Name, spec.RestartPolicy)
		}
		if len(spec.Containers) != 1 {
			t.Fatalf("%s: %d containers", job.Name, len(spec.Containers))
		}
		c := spec.Containers[0]
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: no resources", job.Name)
		}
		defined := map[string]bool{}
		for _, e := range c.Env {
			defined[e.Name] = true
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name != secret.Name {
				t.Errorf("%s: env %s from secret %q, not %q", job.Name, e.Name, e.ValueFrom.SecretKeyRef.Name, secret.Name)
			}
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				if _, ok := cm.Data[e.ValueFrom.ConfigMapKeyRef.Key]; !ok {
					t.Errorf("%s: env %s from a ConfigMap key that does not exist", job.Name, e.Name)
				}
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == cm.Name {
				for k := range cm.Data {
					defined[k] = true
				}
			}
		}
		if !defined["REDIS_URL"] {
			t.Errorf("%s: no REDIS_URL", job.Name)
		}
		for _, a := range c.Args {
			for _, m := range regexp.MustCompile(`\$\(([A-Z_]+)\)`).FindAllStringSubmatch(a, -1) {
				if !defined[m[1]] {
					t.Errorf("%s: argument %q uses $(%s), which the container does not define", job.Name, a, m[1])
				}
			}
		}
	}
	if args := workers.Spec.Template.Spec.Containers[0].Args; len(args) < 2 || args[0] != "worker" || !slices.Contains(args, "--once") {
		t.Errorf("workers run %v, want worker --once", args)
	}
	if args := coordinator.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--workers=$(WORKERS)") {
		t.Errorf("the coordinator runs %v, without --workers=$(WORKERS)", args)
	}
}

// The decoding is strict: a misspelt field is an error, not a default.
func TestTypoFails(t *testing.T) {
	b, err := os.ReadFile("kubernetes/workers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(b), "parallelism:", "parallelizm:", 1)
	var job batchv1.Job
	if err := sigsyaml.UnmarshalStrict([]byte(bad), &job); err == nil || !strings.Contains(err.Error(), "parallelizm") {
		t.Errorf("a misspelt field decoded: %v", err)
	}
}

// The Compose file has the Redis, a coordinator waiting for workers and a
// worker service to scale, and nothing misspelt.
func TestCompose(t *testing.T) {
	f, err := os.Open("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var c struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       map[string]string `yaml:"build"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			DependsOn   []string          `yaml:"depends_on"`
			Volumes     []string          `yaml:"volumes"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
	}
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	w, co := c.Services["worker"], c.Services["coordinator"]
	if c.Services["redis"].Image == "" || len(w.Command) == 0 || w.Command[0] != "worker" ||
		!slices.ContainsFunc(co.Command, func(a string) bool { return strings.HasPrefix(a, "--workers=") }) ||
		w.Environment["REDIS_URL"] == "" || co.Environment["REDIS_URL"] != w.Environment["REDIS_URL"] {
		t.Errorf("compose services %+v", c.Services)
	}
	if _, err := os.Stat(w.Build["dockerfile"][len("deploy/"):]); err != nil {
		t.Errorf("the Dockerfile the services build: %v", err)
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// make release builds every platform its PLATFORMS list names, static and
// stamped. Here this machine's own platform builds and says the stamp,
// and one platform of each other family builds too: Windows (no Unix
// files) and Darwin (Unix without Linux's), the two whose build
// constraints differ from this one's. The code has no file of its own
// for an architecture, so the other four differ from these in nothing
// the compiler checks, and cross-compiling all six cost ten minutes on a
// cold build cache: more than the whole of make test should take.
// The Dockerfile builds the same way, with its VERSION argument.
func TestReleaseBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles three binaries")
	}
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^PLATFORMS \?= (.+)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("no PLATFORMS in the Makefile")
	}
	platforms := strings.Fields(string(m[1]))
	for _, want := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"} {
		if !slices.Contains(platforms, want) {
			t.Errorf("make release does not build %s", want)
		}
	}
	// What makes the four others safe to leave out: no file is any
	// architecture's own.
	_ = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if err == nil && regexp.MustCompile(`_(amd64|arm64|386|arm)(_test)?\.go$`).MatchString(path) {
			t.Errorf("%s is an architecture's own: build every platform", path)
		}
		return nil
	})
	dir := t.TempDir()
	for _, p := range []string{runtime.GOOS + "/" + runtime.GOARCH, "windows/arm64", "darwin/arm64"} {
		goos, goarch, _ := strings.Cut(p, "/")
		out := filepath.Join(dir, "redisload-"+goos+"-"+goarch)
		// One compile at a time: the other packages' tests run beside this
		// one, and cluster failovers among them are timed.
		cmd := exec.Command("go", "build", "-p=1", "-trimpath", "-ldflags", "-X main.version=v9.8.7-test", "-o", out, "../cmd/redisload")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", p, err, b)
		}
		if goos == runtime.GOOS && goarch == runtime.GOARCH {
			v, err := exec.Command(out, "--version").Output()
			if err != nil || strings.TrimSpace(string(v)) != "redisload v9.8.7-test" {
				t.Errorf("%s --version: %q, %v", p, v, err)
			}
		}
	}
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ARG VERSION", "-X main.version=${VERSION}", "CGO_ENABLED=0", "FROM gcr.io/distroless/static"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile: no %q", want)
		}
	}
}
