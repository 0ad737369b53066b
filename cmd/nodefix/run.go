package main

import (
	"context"
	"fmt"
	"io"
	"os"
	osuser "os/user"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nodefix/nodefix/internal/exitcode"
	"github.com/nodefix/nodefix/internal/metrics"
	"github.com/nodefix/nodefix/internal/report"
	"github.com/nodefix/nodefix/internal/runner"
	"github.com/nodefix/nodefix/internal/termio"
	"github.com/nodefix/nodefix/internal/transport"
	"github.com/nodefix/nodefix/tasks"
)

// runCommand is `nodefix run` (issue 4).
func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "run the remediation tasks on the hosts of an inventory",
		Description: "Connects to every host matched by --limit (all by default), --forks at a time, " +
			"and runs the selected tasks in order on each: " + strings.Join(tasks.Names(), ", ") + ".\n" +
			"Exit codes, as ansible-playbook: 0 all hosts ok; 1 nothing was run (bad options or inventory, " +
			"no host matched, the fleet precheck refused); 2 a host failed; 4 a host was unreachable; 99 interrupted.",
		UseShortOptionHandling: true,
		Flags:                  runFlags(),
		Action:                 func(c *cli.Context) error { return runAction(c, false) },
	}
}

// checkCommand is `nodefix check`: run --check.
func checkCommand() *cli.Command {
	return &cli.Command{
		Name:                   "check",
		Usage:                  "report what run would change, changing nothing (run --check)",
		UseShortOptionHandling: true,
		Flags:                  runFlags(),
		Action:                 func(c *cli.Context) error { return runAction(c, true) },
	}
}

func runFlags() []cli.Flag {
	def := tasks.DefaultConfig()
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "inventory `SOURCE`: a file, a directory, or host1,host2, (repeatable)"},
		&cli.StringFlag{Name: "limit", Aliases: []string{"l"}, Usage: "run on the hosts matching `PATTERN` only (Ansible patterns)"},
		&cli.StringFlag{Name: "tasks", Value: "all", Usage: "comma-separated `TASKS` to run (" + strings.Join(tasks.Names(), ", ") + "); they always run in that order"},
		&cli.IntFlag{Name: "forks", Aliases: []string{"f"}, Value: runner.DefaultForks, Usage: "how many hosts to run at once"},
		&cli.BoolFlag{Name: "check", Aliases: []string{"C"}, Usage: "change nothing; report what would change"},
		&cli.BoolFlag{Name: "diff", Aliases: []string{"D"}, Usage: "show what files and names change, before and after"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON document on stdout (progress goes to stderr)"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "connect as `USER` (hosts' ansible_user wins)"},
		&cli.BoolFlag{Name: "become", Aliases: []string{"b"}, Usage: "run the tasks with sudo (as ansible_become)"},
		&cli.StringFlag{Name: "become-user", Usage: "sudo to `USER` (default root; ansible_become_user wins)"},
		&cli.BoolFlag{Name: "ask-become-pass", Aliases: []string{"K"}, Usage: "ask for the sudo password once, on the terminal"},
		&cli.BoolFlag{Name: "ask-pass", Aliases: []string{"k"}, Usage: "ask for the SSH password once, on the terminal"},
		&cli.StringFlag{Name: "private-key", Aliases: []string{"key-file"}, Usage: "SSH private key `FILE` (ansible_ssh_private_key_file wins)"},
		&cli.StringSliceFlag{Name: "extra-vars", Aliases: []string{"e"}, Usage: "set inventory variables, `VARS` as k=v, JSON or YAML, or @FILE (repeatable)"},
		&cli.StringSliceFlag{Name: "known-hosts", Usage: "known_hosts `FILE` to verify host keys with, instead of ~/.ssh/known_hosts (repeatable)"},
		&cli.BoolFlag{Name: "accept-new", Usage: "record the host key of hosts known_hosts does not know yet (OpenSSH's accept-new); a changed key is still refused"},
		&cli.StringFlag{Name: "connection", Aliases: []string{"c"}, Usage: "how to reach the hosts: `TYPE` ssh, or local to run on this machine (one host only)"},
		&cli.StringFlag{Name: "timeout", Aliases: []string{"T"}, Value: secondsString(runner.DefaultConnectTimeout), Usage: "connect timeout per host, `SECONDS` or a duration (10, 30s)"},
		&cli.DurationFlag{Name: "task-timeout", Value: runner.DefaultTaskTimeout, Usage: "time limit for one task on one host"},

		&cli.DurationFlag{Name: "command-timeout", Value: def.CommandTimeout, Usage: "time limit for each command a task runs"},
		&cli.DurationFlag{Name: "rpm-query-max-age", Value: def.RPMQueryMaxAge, Usage: "rpm-queries: an rpm query running longer than this is hung"},
		&cli.DurationFlag{Name: "rpm-query-grace", Value: def.RPMQueryGrace, Usage: "rpm-queries: how long SIGTERM gets before SIGKILL"},
		&cli.StringFlag{Name: "rpm-backup-dir", Value: def.RPMBackupDir, Usage: "rpmdb: the `DIR` on the node where backups go"},
		&cli.IntFlag{Name: "rpm-backup-keep", Value: def.RPMBackupKeep, Usage: "rpmdb: how many backups to keep"},
		&cli.StringFlag{Name: "longhorn-executables", Value: strings.Join(def.LonghornExecutables, ","), Usage: "longhorn-deps: the `LIST` of executables (comma-separated) that must be on PATH"},
		&cli.BoolFlag{Name: "install-missing", Usage: "longhorn-deps: install the missing packages (never by default)"},
		&cli.BoolFlag{Name: "set-nfs-unique-id", Usage: "hostname: set a unique nfs4_unique_id (for clusters that cannot rename hosts)"},
		&cli.BoolFlag{Name: "keep-hostname", Usage: "hostname: rename nothing, only gather and audit identities"},
		&cli.StringFlag{Name: "expected-hostname", Usage: "hostname: rename the one host of this run to `NAME` and nothing else (the name a playbook's fleet precheck approved for a host the inventory names nothing)"},
		&cli.BoolFlag{Name: "trust-inventory", Usage: "hostname: rename to the inventory's name even where the node's kubelet runs under another (the node must then be registered again)"},
		&cli.StringSliceFlag{Name: "serial", Usage: "run the hosts in batches of `N` hosts or N% of them, each batch finished before the next (repeatable, as Ansible's serial list: --serial 1 --serial 20% is a canary, then batches of 20%; the last value repeats)"},
		&cli.StringFlag{Name: "max-fail-percentage", Usage: "start no further host once the failed or unreachable hosts of a batch exceed `P` percent of it (0: any failure), as Ansible's max_fail_percentage"},
		&cli.BoolFlag{Name: "any-errors-fatal", Usage: "start no further host after the first failed or unreachable one, as Ansible's any_errors_fatal"},
		&cli.StringFlag{Name: "run-id", Usage: "name this run `ID` in the audit trail on the nodes (default: 16 random hex digits; a playbook passes one per play)"},
		&cli.StringFlag{Name: "controller", Usage: "who runs this, as `USER@HOST`, for the audit trail (default: this user and machine; a playbook passes the Ansible controller's)"},
		&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of this run to `FILE`, for go tool pprof"},
		&cli.StringFlag{Name: "textfile", Usage: "write the results as Prometheus metrics to `FILE` (node_exporter's textfile collector, e.g. /var/lib/prometheus/node-exporter/nodefix.prom), atomically"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say more (as Ansible): -v each task's details, -vv each command a task ran with its exit status and duration, -vvv its output too and the SSH connection steps"},
		&cli.BoolFlag{Name: "list-hosts", Usage: "print the hosts the run would touch and exit, touching nothing"},
		&cli.BoolFlag{Name: "list-tasks", Usage: "print the tasks the run would run, in order, and exit, touching nothing"},
		&cli.StringFlag{Name: "color", Value: string(termio.ColorAuto), Usage: "colour the output: `WHEN` auto (on a terminal, unless NO_COLOR or ANSIBLE_NOCOLOR is set), always or never"},
	}
}

// parsePercent reads --max-fail-percentage: a number from 0 to 100, "%"
// allowed, as Ansible's percent fields.
func parsePercent(s string) (float64, error) {
	p, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || p < 0 || p > 100 {
		return 0, fmt.Errorf("--max-fail-percentage %q: want a percentage from 0 to 100", s)
	}
	return p, nil
}

// auditInfo names the run in the audit trail: the run id (random unless
// given) and who runs it, from --controller or this user and machine.
func auditInfo(runID, controller string) (tasks.Audit, error) {
	a := tasks.Audit{RunID: runID, Version: version}
	if a.RunID == "" {
		id, err := tasks.NewRunID()
		if err != nil {
			return a, err
		}
		a.RunID = id
	} else if !tasks.ValidRunID(a.RunID) {
		return a, fmt.Errorf("--run-id %q: letters, digits, '.', '_' and '-' only, at most 64", runID)
	}
	if controller != "" {
		user, host, ok := strings.Cut(controller, "@")
		if !ok || user == "" || host == "" {
			return a, fmt.Errorf("--controller %q: want USER@HOST", controller)
		}
		a.ControllerUser, a.ControllerHost = user, host
		return a, nil
	}
	if u, err := osuser.Current(); err == nil {
		a.ControllerUser = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		a.ControllerHost = h
	}
	return a, nil
}

func secondsString(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }

// parseTimeout reads -T as Ansible does (whole seconds) or as a Go duration.
func parseTimeout(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("--timeout %s: must be positive", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--timeout %q: want seconds (10) or a duration (30s)", s)
	}
	return d, nil
}

// runOptions is everything a run needs, read from the command line.
type runOptions struct {
	sources        []string
	limit          string
	tasks          []tasks.Task
	taskNames      []string
	forks          int
	cfg            tasks.Config
	json           bool
	user           string
	become         transport.BecomeDefaults
	askBecomePass  bool
	askPass        bool
	sshPassword    transport.Secret
	privateKey     string
	extraVars      []string
	knownHosts     []string
	acceptNew      bool
	connection     string
	connectTimeout time.Duration
	taskTimeout    time.Duration
	// expectedHostname: the one host of the run may be renamed to this
	// name only (see --expected-hostname).
	expectedHostname string
	textfile         string
	color            termio.ColorMode
	// verbosity is how many -v were given.
	verbosity int
	listHosts bool
	listTasks bool
	serial    []runner.Serial
	budget    runner.Budget
}

func readRunOptions(c *cli.Context, check bool) (runOptions, error) {
	o := runOptions{
		sources:       c.StringSlice("inventory"),
		limit:         c.String("limit"),
		forks:         c.Int("forks"),
		json:          c.Bool("json"),
		user:          c.String("user"),
		become:        transport.BecomeDefaults{Enable: c.Bool("become"), User: c.String("become-user")},
		askBecomePass: c.Bool("ask-become-pass"),
		askPass:       c.Bool("ask-pass"),
		privateKey:    c.String("private-key"),
		extraVars:     c.StringSlice("extra-vars"),
		knownHosts:    c.StringSlice("known-hosts"),
		acceptNew:     c.Bool("accept-new"),
		connection:    c.String("connection"),
		taskTimeout:   c.Duration("task-timeout"),

		expectedHostname: strings.TrimSpace(c.String("expected-hostname")),
		textfile:         c.String("textfile"),
		verbosity:        c.Count("verbose"),
		listHosts:        c.Bool("list-hosts"),
		listTasks:        c.Bool("list-tasks"),
	}
	if c.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: options only (hosts are chosen with -i and --limit)", c.Args().First())
	}
	var err error
	if o.tasks, err = tasks.Select(c.String("tasks")); err != nil {
		return o, err
	}
	for _, t := range o.tasks {
		o.taskNames = append(o.taskNames, t.Name())
	}
	if o.forks < 1 {
		return o, fmt.Errorf("--forks %d: must be at least 1", o.forks)
	}
	if o.connectTimeout, err = parseTimeout(c.String("timeout")); err != nil {
		return o, err
	}
	if o.color, err = termio.ParseColorMode(c.String("color")); err != nil {
		return o, err
	}
	if o.taskTimeout <= 0 {
		return o, fmt.Errorf("--task-timeout %v: must be positive", o.taskTimeout)
	}
	if c.IsSet("textfile") {
		if err := metrics.CheckDir(o.textfile); err != nil {
			return o, fmt.Errorf("--textfile %q: %w", o.textfile, err)
		}
	}
	switch o.connection {
	case "", "ssh", "smart", "paramiko", "local":
	default:
		return o, fmt.Errorf("--connection %q: nodefix connects with ssh or local", o.connection)
	}
	for _, v := range c.StringSlice("serial") {
		for _, part := range strings.Split(v, ",") {
			sv, err := runner.ParseSerial(part)
			if err != nil {
				return o, err
			}
			o.serial = append(o.serial, sv)
		}
	}
	if c.IsSet("max-fail-percentage") {
		p, err := parsePercent(c.String("max-fail-percentage"))
		if err != nil {
			return o, err
		}
		o.budget.MaxFailPercentage = &p
	}
	o.budget.AnyErrorsFatal = c.Bool("any-errors-fatal")
	o.cfg = tasks.DefaultConfig()
	if o.cfg.Audit, err = auditInfo(c.String("run-id"), c.String("controller")); err != nil {
		return o, err
	}
	o.cfg.Check = check || c.Bool("check")
	o.cfg.Diff = c.Bool("diff")
	o.cfg.CommandTimeout = c.Duration("command-timeout")
	o.cfg.RPMQueryMaxAge = c.Duration("rpm-query-max-age")
	o.cfg.RPMQueryGrace = c.Duration("rpm-query-grace")
	o.cfg.RPMBackupDir = c.String("rpm-backup-dir")
	o.cfg.RPMBackupKeep = c.Int("rpm-backup-keep")
	o.cfg.InstallMissing = c.Bool("install-missing")
	o.cfg.SetNFSUniqueID = c.Bool("set-nfs-unique-id")
	o.cfg.KeepHostname = c.Bool("keep-hostname")
	o.cfg.TrustInventory = c.Bool("trust-inventory")
	o.cfg.LonghornExecutables = nil
	for _, e := range strings.Split(c.String("longhorn-executables"), ",") {
		if e = strings.TrimSpace(e); e != "" {
			o.cfg.LonghornExecutables = append(o.cfg.LonghornExecutables, e)
		}
	}
	for name, d := range map[string]time.Duration{"--command-timeout": o.cfg.CommandTimeout, "--rpm-query-max-age": o.cfg.RPMQueryMaxAge, "--rpm-query-grace": o.cfg.RPMQueryGrace} {
		if d <= 0 {
			return o, fmt.Errorf("%s %v: must be positive", name, d)
		}
	}
	if o.cfg.RPMBackupKeep < 1 {
		return o, fmt.Errorf("--rpm-backup-keep %d: keep at least one backup", o.cfg.RPMBackupKeep)
	}
	return o, nil
}

// app is what the action needs from the process, so tests can run it.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	prompter       *termio.Prompter
	// interrupts delivers Ctrl-C (SIGINT/SIGTERM); nil in tests that do
	// not interrupt.
	interrupts <-chan os.Signal
	// exit ends the process at once (second Ctrl-C).
	exit        func(code int)
	stopSignals func()
}

func runAction(c *cli.Context, check bool) error {
	o, err := readRunOptions(c, check)
	if err != nil {
		return exitcode.With(exitcode.Usage, err)
	}
	if o.listHosts || o.listTasks {
		return list(c.Context, o, c.App.Writer)
	}
	if path := c.String("cpuprofile"); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return exitcode.With(exitcode.Usage, err)
		}
		defer func() {
			if err := stop(); err != nil {
				fmt.Fprintf(c.App.ErrWriter, "nodefix: %v\n", err)
			}
		}()
	}
	a := processApp(c.App.Writer, c.App.ErrWriter)
	defer a.stop()
	return a.run(c.Context, o, c.Command.Name)
}

// run is one nodefix run: plan, precheck, run, audit, report.
func (a *app) run(ctx context.Context, o runOptions, command string) error {
	if err := a.askPasswords(&o); err != nil {
		return exitcode.With(exitcode.Usage, err)
	}
	p, err := plan(ctx, o)
	if err != nil {
		return exitcode.With(exitcode.Usage, err)
	}
	verbose := newVerbose(o.verbosity)
	dialer, err := newDialer(o, a.getenv, a.prompter, verbose.steps())
	if err != nil {
		return exitcode.With(exitcode.Usage, err)
	}
	defer dialer.Close()

	human := a.stdout
	if o.json {
		human = a.stderr
	}
	humanOpts := report.HumanOptions{
		Color:    o.color.Wanted(human, a.getenv),
		Progress: termio.IsTerminal(human),
		Diff:     o.cfg.Diff,
		Total:    len(p.targets),
	}
	verbose.humanOptions(&humanOpts)
	hr := report.NewHuman(human, humanOpts)
	for _, w := range p.warnings {
		hr.Warning(w)
	}
	if dialer.hostKeyCheckingOff {
		hr.Warning("ANSIBLE_HOST_KEY_CHECKING=False: host keys of unknown hosts are accepted without verification (a changed key is still refused)")
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go a.watchInterrupts(done, cancel, hr)

	runOpts := runner.Options{
		Tasks:          o.tasks,
		Config:         o.cfg,
		Dialer:         dialer,
		Forks:          o.forks,
		ConnectTimeout: o.connectTimeout,
		TaskTimeout:    o.taskTimeout,
		Precheck:       p.precheck,
		Survey:         p.survey,
		SurveyWants:    p.surveyWants,
		SurveyTask:     tasks.NameHostname,
		Serial:         o.serial,
		Budget:         o.budget,
		Observer:       hr,
	}
	verbose.runnerOptions(&runOpts)
	res := runner.Run(runCtx, p.targets, runOpts)
	if res.PrecheckErr != nil && !o.json {
		return res.Err()
	}
	findings := audit(res)
	if res.PrecheckErr == nil {
		hr.Recap(res, findings)
		hr.RunID(o.cfg.Audit.RunID, o.cfg.Check)
	}
	if o.json {
		doc := report.NewDocument(runInfo(o, command), res, findings)
		if err := report.WriteJSON(a.stdout, doc); err != nil {
			return exitcode.With(exitcode.Usage, fmt.Errorf("writing JSON: %w", err))
		}
	}
	if o.textfile != "" {
		return a.writeTextfile(o, command, res, findings)
	}
	return res.Err()
}

// runInfo is the JSON document's account of what ran.
func runInfo(o runOptions, command string) report.RunInfo {
	info := report.RunInfo{Version: version, Command: command, CheckMode: o.cfg.Check,
		DiffMode: o.cfg.Diff, Tasks: o.taskNames, RunID: o.cfg.Audit.RunID,
		MaxFailPercentage: o.budget.MaxFailPercentage, AnyErrorsFatal: o.budget.AnyErrorsFatal, Serial: []string{}}
	for _, s := range o.serial {
		info.Serial = append(info.Serial, s.String())
	}
	return info
}

// askPasswords asks -k and -K once, before any host is touched.
func (a *app) askPasswords(o *runOptions) error {
	if o.askPass {
		pw, err := a.prompter.ReadSecret("SSH password: ")
		if err != nil {
			return fmt.Errorf("-k/--ask-pass: %w", err)
		}
		o.sshPassword = transport.Secret(pw)
	}
	if o.askBecomePass {
		prompt := "BECOME password: "
		if o.askPass {
			prompt = "BECOME password[defaults to SSH password]: "
		}
		pw, err := a.prompter.ReadSecret(prompt)
		if err != nil {
			return fmt.Errorf("-K/--ask-become-pass: %w", err)
		}
		if pw == "" {
			pw = string(o.sshPassword)
		}
		o.become.Password = transport.Secret(pw)
	}
	return nil
}

// audit compares the identity facts the hostname task gathered.
func audit(res runner.Result) []report.Finding {
	facts := map[string]map[string]string{}
	for _, h := range res.Hosts {
		for _, o := range h.Outcomes {
			if len(o.Facts) > 0 {
				if facts[h.Name] == nil {
					facts[h.Name] = map[string]string{}
				}
				for k, v := range o.Facts {
					facts[h.Name][k] = v
				}
			}
		}
	}
	var out []report.Finding
	for _, f := range tasks.AuditIdentities(facts) {
		out = append(out, report.Finding{Kind: f.Kind, Value: f.Value, Hosts: f.Hosts, Msg: f.String()})
	}
	return out
}
