package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/api"
	"github.com/vigil-ha/vigil/explain"
)

// errNoSuch: the API answered 404 for that kind and name.
var errNoSuch = errors.New("not found")

var numeric = regexp.MustCompile(`^[0-9]+$`)

func explainCmd() *cobra.Command {
	c := &ctl{client: &http.Client{Timeout: 30 * time.Second}}
	var format string
	cmd := &cobra.Command{
		Use:   "explain INCIDENT|SERVER|HOST",
		Short: "Show why Vigil did what it did: observation, verdict, policy rule, each step with its outcome and times",
		Long: `Explains an incident (its number), or the latest incident of a server or host (its
ID or name) with its current verdict, in plain sentences: what Vigil observed, the
verdict and its detection rule, the policy and its rule, each step with its outcome
and times ("would have" for a dry run), why it waited, and how it ended.

A bare number is an incident; incident/N, server/ID and host/NAME say the kind;
another name is looked up as a host, then as a server. Rule IDs: docs/rules.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return fmt.Errorf("-f/--format: want text or json, got %q", format)
			}
			chain, err := c.explain(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(chain)
			}
			return chain.Text(out)
		},
	}
	def := os.Getenv("VIGIL_URL")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	cmd.Flags().StringVar(&c.server, "server", def, "Vigil's API URL ($VIGIL_URL)")
	cmd.Flags().StringVarP(&format, "format", "f", "text", "output: text or json (the structured chain)")
	return cmd
}

// explain asks the API for the chain of what arg names.
func (c *ctl) explain(arg string) (explain.Chain, error) {
	kind, id, typed := strings.Cut(arg, "/")
	switch {
	case typed:
		if kind != "incident" && kind != "server" && kind != "host" {
			return explain.Chain{}, fmt.Errorf("%q: the kind before / must be incident, server or host", arg)
		}
	case numeric.MatchString(arg):
		kind, id = "incident", arg
	default:
		for _, k := range []string{"host", "server"} {
			ch, err := c.getChain(k, arg)
			if !errors.Is(err, errNoSuch) {
				return ch, err
			}
		}
		return explain.Chain{}, fmt.Errorf("%q: Vigil knows no host or server of that name, nor an incident of one", arg)
	}
	if id == "" {
		return explain.Chain{}, fmt.Errorf("%q: give the %s's name after the /", arg, kind)
	}
	ch, err := c.getChain(kind, id)
	if errors.Is(err, errNoSuch) {
		return ch, fmt.Errorf("%s %s: %w", kind, id, err)
	}
	return ch, err
}

func (c *ctl) getChain(kind, id string) (explain.Chain, error) {
	var ch explain.Chain
	path := "/v1/explain/" + url.PathEscape(kind) + "/" + url.PathEscape(id)
	resp, err := c.client.Get(strings.TrimRight(c.server, "/") + path)
	if err != nil {
		return ch, fmt.Errorf("cannot reach Vigil at %s (is `vigil serve` or `vigil demo` running? set --server): %w", c.server, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return ch, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return ch, errNoSuch
	}
	if resp.StatusCode >= 400 {
		var e api.Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return ch, fmt.Errorf("GET %s: %s", path, e.Error)
		}
		return ch, fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	if err := json.Unmarshal(data, &ch); err != nil {
		return ch, fmt.Errorf("GET %s: the answer is not an explanation: %w", path, err)
	}
	return ch, nil
}
