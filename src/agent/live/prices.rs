//! The per-model price table of a run's live spend (`JOURNEYMAN_MODEL_PRICES`).

/// Price of a model in USD per million tokens. Cache reads cost a tenth of the input price and
/// cache writes a quarter more (Anthropic's published multipliers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

/// The per-model price table: the first entry whose key the model name contains wins.
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    entries: Vec<(String, Price)>,
}

/// `JOURNEYMAN_MODEL_PRICES` by default: Anthropic's list prices per million tokens (input/output)
/// for the current Opus, Sonnet and Haiku (Opus 4 and 4.1 cost 15/75: configure it for them).
pub const DEFAULT_PRICES: &str = "opus=5/25,sonnet=3/15,haiku=1/5";

impl Prices {
    /// Parses `key=input/output,...` (USD per million tokens).
    pub fn parse(text: &str) -> Result<Prices, String> {
        let mut entries = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, price) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not `model=input/output`"))?;
            let (input, output) = price.split_once('/').ok_or_else(|| {
                format!("`{price}` is not `input/output` (USD per million tokens)")
            })?;
            let number = |s: &str| {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or_else(|| format!("`{s}` in `{part}` is not a price"))
            };
            entries.push((
                key.trim().to_ascii_lowercase(),
                Price {
                    input: number(input)?,
                    output: number(output)?,
                },
            ));
        }
        if entries.is_empty() {
            return Err("the price table is empty".into());
        }
        Ok(Prices { entries })
    }

    /// The price of `model`: its entry, else the dearest entry (an unknown model never runs free).
    pub fn of(&self, model: &str) -> Price {
        let model = model.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(key, _)| model.contains(key.as_str()))
            .map(|(_, p)| *p)
            .unwrap_or_else(|| self.dearest())
    }

    fn dearest(&self) -> Price {
        self.entries.iter().map(|(_, p)| *p).fold(
            Price {
                input: 0.0,
                output: 0.0,
            },
            |a, b| Price {
                input: a.input.max(b.input),
                output: a.output.max(b.output),
            },
        )
    }
}

impl Default for Prices {
    fn default() -> Self {
        Prices::parse(DEFAULT_PRICES).expect("the default price table parses")
    }
}
