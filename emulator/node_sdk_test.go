package emulator

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// nodeSDKDir holds the official Node SDK test: its package.json pins @authsignal/node, which
// `make unit` installs there with npm ci.
const nodeSDKDir = "testdata/node"

// TestOfficialNodeSDK runs testdata/node/server-sdk.test.mjs: the official Node SDK,
// unchanged, calling every one of its methods and asserting the documented answers.
func TestOfficialNodeSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the Node SDK run")
	}
	node, err := exec.LookPath("node")
	installed := err == nil && fileExists(filepath.Join(nodeSDKDir, "node_modules", "@authsignal", "node", "package.json"))
	if !installed {
		msg := "the official Node SDK is not installed: run `npm ci --prefix emulator/testdata/node` (make unit does), with Node.js 20 or newer"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	rc := newReceiver(t) // webhooks go somewhere; the SDK checks their signatures from GET /emulator/webhooks
	env := newEnv(t, func(c *Config) {
		c.Now = nil // the SDK's test compares with its own clock
		c.WebhookURLs = []string{rc.srv.URL}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "server-sdk.test.mjs")
	cmd.Dir = nodeSDKDir
	cmd.Env = append(os.Environ(), "AUTHSIGNAL_URL="+env.srv.URL+"/v1", "AUTHSIGNAL_SECRET="+testKey, "EMULATOR_URL="+env.srv.URL,
		"CALL_CONNECT_SECRET="+DevCallConnectSecretKey)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the official Node SDK failed against the emulator (%v):\n%s", err, out)
	}
	t.Logf("%s", out)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
