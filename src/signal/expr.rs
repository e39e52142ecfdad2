//! The rule language: a small expression grammar over named signals, parsed once and then
//! evaluated a whole column at a time (see [`super::Signals::eval`]).
//!
//! ```text
//! expr    := or
//! or      := and (("or" | "||") and)*
//! and     := not (("and" | "&&") not)*
//! not     := ("not" | "!") not | compare
//! compare := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
//! sum     := product (("+" | "-") product)*
//! product := unary (("*" | "/") unary)*
//! unary   := "-" unary | atom
//! atom    := number | duration | name | name "(" expr ("," expr)* ")" | "(" expr ")"
//! ```
//! A duration is a number with a unit, `72h`, `7d` or `30m` (minutes), and is only a window
//! argument. Written by hand rather than taken from a crate (evalexpr, fasteval): those
//! evaluate one row at a time through a context lookup, know no durations, and give errors
//! without the column; the grammar is 250 lines and the evaluation is vectorised.

use std::fmt;

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `and`
    And,
    /// `or`
    Or,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number.
    Number(f64),
    /// A window length, ms (`72h`).
    Duration(i64),
    /// A signal.
    Name(String),
    /// `-x`
    Neg(Box<Expr>),
    /// `not x`
    Not(Box<Expr>),
    /// `x op y`
    Binary(Op, Box<Expr>, Box<Expr>),
    /// `f(x, ...)`
    Call(String, Vec<Expr>),
}

impl Expr {
    /// Whether the expression mentions the name `name` anywhere.
    pub fn mentions(&self, name: &str) -> bool {
        match self {
            Expr::Name(n) => n == name,
            Expr::Number(_) | Expr::Duration(_) => false,
            Expr::Neg(x) | Expr::Not(x) => x.mentions(name),
            Expr::Binary(_, a, b) => a.mentions(name) || b.mentions(name),
            Expr::Call(_, args) => args.iter().any(|a| a.mentions(name)),
        }
    }
}

/// Why an expression did not parse: what, and at which character.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// Character offset in the source.
    pub at: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.at + 1)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Duration(i64),
    Name(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

fn tokenize(src: &str) -> Result<Vec<(usize, Token)>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            // An exponent: 1e-4, 2.5E3.
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '-' || chars[j] == '+') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let value: f64 = text.parse().map_err(|_| ParseError { at: start, message: format!("`{text}` is not a number") })?;
            let unit_start = i;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            let unit: String = chars[unit_start..i].iter().collect();
            let ms_per = match unit.as_str() {
                "" => None,
                "m" | "min" => Some(60_000.0),
                "h" => Some(3_600_000.0),
                "d" => Some(86_400_000.0),
                other => return Err(ParseError { at: unit_start, message: format!("unknown unit `{other}` after {text}: use m (minutes), h (hours) or d (days), e.g. 72h") }),
            };
            out.push((start, match ms_per {
                None => Token::Number(value),
                Some(ms) => Token::Duration((value * ms).round() as i64),
            }));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            out.push((start, match name.as_str() {
                "and" => Token::Op("and"),
                "or" => Token::Op("or"),
                "not" => Token::Op("not"),
                _ => Token::Name(name),
            }));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op = match two.as_str() {
            "<=" => Some("<="),
            ">=" => Some(">="),
            "==" => Some("=="),
            "!=" => Some("!="),
            "&&" => Some("and"),
            "||" => Some("or"),
            _ => None,
        };
        if let Some(op) = op {
            out.push((start, Token::Op(op)));
            i += 2;
            continue;
        }
        let token = match c {
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            '<' => Token::Op("<"),
            '>' => Token::Op(">"),
            '+' => Token::Op("+"),
            '-' => Token::Op("-"),
            '*' => Token::Op("*"),
            '/' => Token::Op("/"),
            '!' => Token::Op("not"),
            '=' => return Err(ParseError { at: start, message: "`=` is not an operator: compare with `==`".into() }),
            other => return Err(ParseError { at: start, message: format!("unexpected character `{other}`") }),
        };
        out.push((start, token));
        i += 1;
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|t| &t.1)
    }
    fn at(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |t| t.0)
    }
    fn error<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError { at: self.at(), message: message.into() })
    }
    fn eat_op(&mut self, ops: &[&'static str]) -> Option<&'static str> {
        match self.peek() {
            Some(Token::Op(op)) if ops.contains(op) => {
                let op = *op;
                self.pos += 1;
                Some(op)
            }
            _ => None,
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while self.eat_op(&["or"]).is_some() {
            left = Expr::Binary(Op::Or, Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.not()?;
        while self.eat_op(&["and"]).is_some() {
            left = Expr::Binary(Op::And, Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }
    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.eat_op(&["not"]).is_some() {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.compare()
    }
    fn compare(&mut self) -> Result<Expr, ParseError> {
        let left = self.sum()?;
        let Some(op) = self.eat_op(&["<", "<=", ">", ">=", "==", "!="]) else { return Ok(left) };
        let op = match op {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "==" => Op::Eq,
            _ => Op::Ne,
        };
        let right = self.sum()?;
        if matches!(self.peek(), Some(Token::Op("<" | "<=" | ">" | ">=" | "==" | "!="))) {
            return self.error("comparisons do not chain: write `a < b and b < c`");
        }
        Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
    }
    fn sum(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.product()?;
        while let Some(op) = self.eat_op(&["+", "-"]) {
            let op = if op == "+" { Op::Add } else { Op::Sub };
            left = Expr::Binary(op, Box::new(left), Box::new(self.product()?));
        }
        Ok(left)
    }
    fn product(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while let Some(op) = self.eat_op(&["*", "/"]) {
            let op = if op == "*" { Op::Mul } else { Op::Div };
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat_op(&["-"]).is_some() {
            return Ok(match self.unary()? {
                Expr::Number(x) => Expr::Number(-x),
                other => Expr::Neg(Box::new(other)),
            });
        }
        self.atom()
    }
    fn atom(&mut self) -> Result<Expr, ParseError> {
        let Some(token) = self.peek().cloned() else { return self.error("the expression ends too early") };
        self.pos += 1;
        match token {
            Token::Number(x) => Ok(Expr::Number(x)),
            Token::Duration(ms) => Ok(Expr::Duration(ms)),
            Token::Open => {
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return self.error("expected `)`");
                }
                self.pos += 1;
                Ok(inner)
            }
            Token::Name(name) => {
                if self.peek() != Some(&Token::Open) {
                    return Ok(Expr::Name(name));
                }
                self.pos += 1;
                let mut args = Vec::new();
                if self.peek() != Some(&Token::Close) {
                    loop {
                        args.push(self.or()?);
                        match self.peek() {
                            Some(Token::Comma) => self.pos += 1,
                            Some(Token::Close) => break,
                            _ => return self.error(format!("expected `,` or `)` in the arguments of {name}(...)")),
                        }
                    }
                }
                self.pos += 1;
                Ok(Expr::Call(name, args))
            }
            Token::Close => {
                self.pos -= 1;
                self.error("unexpected `)`")
            }
            Token::Comma => {
                self.pos -= 1;
                self.error("unexpected `,`")
            }
            Token::Op(op) => {
                self.pos -= 1;
                self.error(format!("unexpected `{op}`: a value or a signal goes here"))
            }
        }
    }
}

/// Parse an expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(src)?;
    let mut parser = Parser { tokens, pos: 0, end: src.chars().count() };
    if parser.tokens.is_empty() {
        return parser.error("the expression is empty");
    }
    let expr = parser.or()?;
    if parser.pos < parser.tokens.len() {
        return parser.error("unexpected text after the expression (an operator missing?)");
    }
    Ok(expr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> Box<Expr> {
        Box::new(Expr::Name(n.into()))
    }

    #[test]
    fn precedence_and_durations() {
        let e = parse("funding_predicted_apr > 0.10 and basis_bp > -5 or not x").unwrap();
        let expected = Expr::Binary(
            Op::Or,
            Box::new(Expr::Binary(
                Op::And,
                Box::new(Expr::Binary(Op::Gt, name("funding_predicted_apr"), Box::new(Expr::Number(0.10)))),
                Box::new(Expr::Binary(Op::Gt, name("basis_bp"), Box::new(Expr::Number(-5.0)))),
            )),
            Box::new(Expr::Not(name("x"))),
        );
        assert_eq!(e, expected);
        assert_eq!(parse("ema(a, 72h)").unwrap(), Expr::Call("ema".into(), vec![Expr::Name("a".into()), Expr::Duration(72 * 3_600_000)]));
        assert_eq!(parse("lag(a, 1.5d)").unwrap(), Expr::Call("lag".into(), vec![Expr::Name("a".into()), Expr::Duration(36 * 3_600_000)]));
        assert_eq!(parse("1 + 2 * 3").unwrap(), Expr::Binary(Op::Add, Box::new(Expr::Number(1.0)), Box::new(Expr::Binary(Op::Mul, Box::new(Expr::Number(2.0)), Box::new(Expr::Number(3.0))))));
        assert_eq!(parse("1e-4").unwrap(), Expr::Number(1e-4));
        assert!(parse("held * x < 0.02").unwrap().mentions("held"));
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(parse("a = 1").unwrap_err().at, 2);
        assert!(parse("a < b < c").unwrap_err().message.contains("chain"));
        assert!(parse("ema(a, 72y)").unwrap_err().message.contains("unknown unit"));
        assert!(parse("(a > 1").unwrap_err().message.contains("`)`"));
        assert!(parse("a b").unwrap_err().message.contains("operator missing"));
        assert!(parse("").is_err());
        assert!(parse("a >").unwrap_err().message.contains("ends too early"));
    }
}
