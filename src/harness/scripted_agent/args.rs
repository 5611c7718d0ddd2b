//! The scripted agent's command line: the options of the real `claude` CLI that the worker uses,
//! parsed as the real one parses them (variadic tool lists, `--opt=value`, `--` ends the options).
//!
//! What it must never do: accept an option the real CLI would reject; an unknown one is an error,
//! so a worker change that the real CLI would refuse fails in tests too.

/// The options that change what the scripted agent does.
#[derive(Debug, Default)]
pub(super) struct Args {
    pub(super) print: bool,
    pub(super) prompt: Option<String>,
    pub(super) output_format: String,
    pub(super) max_turns: u32,
    pub(super) allowed: Vec<String>,
    pub(super) disallowed: Vec<String>,
    /// `--resume <session>`: continue that session.
    pub(super) resume: Option<String>,
    /// `--max-budget-usd <amount>`: stop once the run's own cost is over it.
    pub(super) max_budget_usd: Option<f64>,
    pub(super) verbose: bool,
}

/// Parses the arguments after the program name; `Err` is the message the real CLI would print.
pub(super) fn parse_args(argv: Vec<String>) -> Result<Args, String> {
    let mut args = Args {
        output_format: "text".into(),
        max_turns: 10,
        ..Args::default()
    };
    let mut it = argv.into_iter().peekable();
    let mut options_done = false;
    while let Some(arg) = it.next() {
        if options_done || !arg.starts_with('-') || arg == "-" {
            if args.prompt.is_some() {
                return Err(format!("too many arguments: unexpected `{arg}`"));
            }
            args.prompt = Some(arg);
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("option '{name}' argument missing"))
        };
        match flag.as_str() {
            "--" => options_done = true,
            "-p" | "--print" => args.print = true,
            "-v" | "--version" => {
                println!("0.0.0 (journeyman scripted agent)");
                std::process::exit(0);
            }
            "--output-format" => args.output_format = value(&flag)?,
            "-r" | "--resume" => args.resume = Some(value(&flag)?),
            "--max-turns" => {
                let v = value(&flag)?;
                args.max_turns = v
                    .parse()
                    .map_err(|_| format!("--max-turns expects a number, got `{v}`"))?;
            }
            // Variadic in the real CLI: values until the next option; each comma or space separated.
            "--allowedTools" | "--allowed-tools" | "--disallowedTools" | "--disallowed-tools" => {
                let mut values: Vec<String> = inline.into_iter().collect();
                while let Some(next) = it.next_if(|a| !a.starts_with('-')) {
                    values.push(next);
                }
                let tools = tool_values(&flag, &values)?;
                if flag.starts_with("--allowed") {
                    args.allowed.extend(tools);
                } else {
                    args.disallowed.extend(tools);
                }
            }
            "--max-budget-usd" => args.max_budget_usd = Some(amount(&value(&flag)?)?),
            "--verbose" => args.verbose = true,
            // Accepted and ignored: they change nothing a script can imitate.
            "--no-session-persistence" => {}
            "--model" | "--permission-mode" | "--append-system-prompt" | "--session-id" => {
                value(&flag)?;
            }
            _ => return Err(format!("unknown option '{flag}'")),
        }
    }
    if !matches!(args.output_format.as_str(), "text" | "json" | "stream-json") {
        return Err(format!(
            "the scripted agent supports --output-format text, json or stream-json, not `{}`",
            args.output_format
        ));
    }
    if args.print && args.output_format == "stream-json" && !args.verbose {
        // The real CLI's own words (2.1.330).
        return Err("When using --print, --output-format=stream-json requires --verbose".into());
    }
    Ok(args)
}

/// The tools of one variadic list option: at least one.
fn tool_values(flag: &str, values: &[String]) -> Result<Vec<String>, String> {
    if values.is_empty() {
        return Err(format!("option '{flag} <tools...>' argument missing"));
    }
    Ok(values.iter().flat_map(|v| split_tools(v)).collect())
}

/// A positive amount of US dollars.
fn amount(v: &str) -> Result<f64, String> {
    v.parse()
        .ok()
        .filter(|b: &f64| b.is_finite() && *b > 0.0)
        .ok_or_else(|| format!("--max-budget-usd expects a positive amount, got `{v}`"))
}

/// Splits on commas and spaces outside parentheses: `Bash(git *),Edit Read`.
fn split_tools(text: &str) -> Vec<String> {
    let mut tools = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 && (c == ',' || c == ' ') {
            if !current.is_empty() {
                tools.push(std::mem::take(&mut current));
            }
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        tools.push(current);
    }
    tools
}
