package main

import (
	"flag"
	"fmt"
	"text/tabwriter"
)

func newScenariosFlags(e *env) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("scenarios", flag.ContinueOnError)
	file := fs.String("file", "", "scenario `file` to list instead of the built-in scenarios.yaml")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: parity scenarios [flags]\n\nLists the scenarios that 'parity run --scenario NAME' accepts.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs, file
}

// scenarios lists the scenarios of the built-in file or of --file.
func (e *env) scenarios(args []string) (int, error) {
	fs, path := newScenariosFlags(e)
	if err := e.parseFlags(fs, args); err != nil {
		return exitUsage, err
	}
	file, err := loadScenarios(*path)
	if err != nil {
		return exitUsage, err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tORDERS\tMARKETS\tACCOUNTS\tCONCURRENCY\tHOT\tDESCRIPTION")
	for _, sc := range file.Scenarios {
		hot := "no"
		if sc.ExpectContention {
			hot = "yes"
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", sc.Name, sc.TotalOrders(), sc.Markets,
			sc.TotalAccounts(), sc.Concurrency, hot, sc.Description)
	}
	if err := w.Flush(); err != nil {
		return exitInfra, fmt.Errorf("write scenarios: %w", err)
	}
	return exitConsistent, nil
}
