package main

import "errors"

func cmdPlot(args []string) error { return errors.New("plot: not yet") }
