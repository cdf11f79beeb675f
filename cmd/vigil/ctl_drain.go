package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/model"
)

// hostGroup returns the `ctl host` command, made once whoever adds to it first.
func hostGroup(ctlRoot *cobra.Command) *cobra.Command {
	for _, c := range ctlRoot.Commands() {
		if c.Name() == "host" {
			return c
		}
	}
	h := &cobra.Command{Use: "host", Short: "Operations on a compute host (drain, ...)"}
	ctlRoot.AddCommand(h)
	return h
}

// addHostDrain adds `vigil ctl host drain HOST [--wait D]`.
func (c *ctl) addHostDrain(ctlRoot *cobra.Command) {
	var wait time.Duration
	drain := &cobra.Command{
		Use:   "drain HOST",
		Short: "Move every protected server off a live host (live migration, cold when refused)",
		Long: "Vigil journals a drain incident for the host and migrates each protected server on it, one live\n" +
			"migration each (a cold migration, confirmed, when the live one is refused or fails), letting\n" +
			"Nova's scheduler place them, within Vigil's concurrency limits. It survives a restart of Vigil:\n" +
			"a migration already taken is seen in Nova's instance actions and never repeated. A host that is\n" +
			"down is refused: its servers are evacuated by its own incident once it is fenced.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var inc model.Incident
			if err := c.do(http.MethodPost, "/v1/hosts/"+seg(args[0])+"/drain", nil, &inc); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			deadline := time.Now().Add(wait)
			for wait > 0 && !inc.State.Closed() && time.Now().Before(deadline) {
				time.Sleep(time.Second)
				if err := c.do(http.MethodGet, "/v1/incidents/"+strconv.FormatInt(inc.ID, 10), nil, &inc); err != nil {
					return err
				}
			}
			if err := c.print(out, inc, func(w io.Writer) { printDrain(w, inc) }); err != nil {
				return err
			}
			if wait > 0 && inc.State != model.IncidentResolved {
				return fmt.Errorf("drain of %s not done: incident %d %s: %s", args[0], inc.ID, inc.State, inc.Reason)
			}
			return nil
		},
	}
	drain.Flags().DurationVar(&wait, "wait", 0, "wait this long for the drain to finish (0: return at once)")
	hostGroup(ctlRoot).AddCommand(drain)
}

func printDrain(w io.Writer, inc model.Incident) {
	fmt.Fprintf(w, "drain of host %s: incident %d %s", inc.Subject.ID, inc.ID, inc.State)
	if inc.Reason != "" {
		fmt.Fprintf(w, ": %s", inc.Reason)
	}
	fmt.Fprintln(w)
	for _, st := range inc.Steps {
		fmt.Fprintf(w, "  %d. %s %s: %s", st.Seq, st.Action, st.Server, st.State)
		if st.Error != "" {
			fmt.Fprintf(w, " (%s)", st.Error)
		}
		fmt.Fprintln(w)
	}
}
