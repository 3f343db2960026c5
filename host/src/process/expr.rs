//! Conditions of a process: a small, safe expression language over the instance's
//! variables and its record. No calls, no loops, no assignment: a parsed expression
//! can only compare and combine values, so a definition cannot run code.
//!
//! ```text
//! amount >= 1000 && (stage == "proposal" || record.source == 'Web') && !vip
//! ```
//!
//! Names are looked up in a JSON object (`record.source` walks into objects); a
//! missing name is `null`. `==`/`!=` compare any values (numbers as numbers),
//! `<`, `<=`, `>`, `>=` compare two numbers or two strings (anything else is false),
//! `&&`, `||` and `!` take truthiness (`false`, `null`, `0` and `""` are false).
//! BPMN's `${...}` wrapping is accepted.

use serde_json::Value;

/// The longest expression accepted, and how deeply it may nest.
const MAX_LEN: usize = 2_000;
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    Name(Vec<String>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(Box<Expr>, Cmp, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
    Dot,
}

/// Parses an expression, or says what is wrong and where.
pub fn parse(text: &str) -> Result<Expr, String> {
    let text = text.trim();
    let text = text
        .strip_prefix("${")
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text);
    if text.len() > MAX_LEN {
        return Err(format!("an expression is at most {MAX_LEN} characters"));
    }
    let tokens = lex(text)?;
    if tokens.is_empty() {
        return Err("the expression is empty".into());
    }
    let mut p = Parser { tokens, at: 0 };
    let expr = p.or(0)?;
    if p.at < p.tokens.len() {
        return Err(format!(
            "unexpected {} after a complete expression",
            describe(&p.tokens[p.at])
        ));
    }
    Ok(expr)
}

fn describe(t: &Token) -> String {
    match t {
        Token::Num(n) => format!("number {n}"),
        Token::Str(s) => format!("text \"{s}\""),
        Token::Ident(s) => format!("name '{s}'"),
        Token::Op(o) => format!("'{o}'"),
        Token::LParen => "'('".into(),
        Token::RParen => "')'".into(),
        Token::Dot => "'.'".into(),
    }
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::LParen);
                i += 1;
            }
            ')' => {
                tokens.push(Token::RParen);
                i += 1;
            }
            '.' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                tokens.push(Token::Dot);
                i += 1;
            }
            '"' | '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("a text is not closed by its quote".into()),
                        Some('\\') => {
                            s.push(*chars.get(i + 1).ok_or("a text ends with \\")?);
                            i += 2;
                        }
                        Some(q) if *q == c => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(s));
            }
            c if c.is_ascii_digit() || c == '.' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let n: String = chars[start..i].iter().collect();
                tokens.push(Token::Num(
                    n.parse().map_err(|_| format!("'{n}' is not a number"))?,
                ));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                tokens.push(match word.as_str() {
                    "and" => Token::Op("&&"),
                    "or" => Token::Op("||"),
                    "not" => Token::Op("!"),
                    _ => Token::Ident(word),
                });
            }
            _ => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let op = ["==", "!=", "<=", ">=", "&&", "||"]
                    .into_iter()
                    .find(|o| *o == two)
                    .or_else(|| ["<", ">", "!"].into_iter().find(|o| o.starts_with(c)));
                let Some(op) = op else {
                    return Err(format!("'{c}' has no meaning in an expression"));
                };
                tokens.push(Token::Op(op));
                i += op.len();
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if self.peek() == Some(&Token::Op(static_op(op))) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn deeper(depth: usize) -> Result<usize, String> {
        if depth >= MAX_DEPTH {
            Err(format!("an expression nests at most {MAX_DEPTH} deep"))
        } else {
            Ok(depth + 1)
        }
    }

    fn or(&mut self, depth: usize) -> Result<Expr, String> {
        let depth = Self::deeper(depth)?;
        let mut left = self.and(depth)?;
        while self.eat_op("||") {
            left = Expr::Or(Box::new(left), Box::new(self.and(depth)?));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, String> {
        let mut left = self.not(depth)?;
        while self.eat_op("&&") {
            left = Expr::And(Box::new(left), Box::new(self.not(depth)?));
        }
        Ok(left)
    }

    fn not(&mut self, depth: usize) -> Result<Expr, String> {
        if self.eat_op("!") {
            let depth = Self::deeper(depth)?;
            return Ok(Expr::Not(Box::new(self.not(depth)?)));
        }
        self.compare(depth)
    }

    fn compare(&mut self, depth: usize) -> Result<Expr, String> {
        let left = self.atom(depth)?;
        let cmp = match self.peek() {
            Some(Token::Op("==")) => Cmp::Eq,
            Some(Token::Op("!=")) => Cmp::Ne,
            Some(Token::Op("<")) => Cmp::Lt,
            Some(Token::Op("<=")) => Cmp::Le,
            Some(Token::Op(">")) => Cmp::Gt,
            Some(Token::Op(">=")) => Cmp::Ge,
            _ => return Ok(left),
        };
        self.at += 1;
        let right = self.atom(depth)?;
        Ok(Expr::Compare(Box::new(left), cmp, Box::new(right)))
    }

    fn atom(&mut self, depth: usize) -> Result<Expr, String> {
        let Some(token) = self.peek().cloned() else {
            return Err("the expression ends where a value was expected".into());
        };
        self.at += 1;
        Ok(match token {
            Token::Num(n) => Expr::Literal(Value::from(n)),
            Token::Str(s) => Expr::Literal(Value::String(s)),
            Token::Ident(word) => match word.as_str() {
                "true" => Expr::Literal(Value::Bool(true)),
                "false" => Expr::Literal(Value::Bool(false)),
                "null" => Expr::Literal(Value::Null),
                _ => {
                    let mut path = vec![word];
                    while self.peek() == Some(&Token::Dot) {
                        self.at += 1;
                        match self.peek().cloned() {
                            Some(Token::Ident(next)) => {
                                self.at += 1;
                                path.push(next);
                            }
                            _ => return Err("a '.' is followed by a name".into()),
                        }
                    }
                    Expr::Name(path)
                }
            },
            Token::LParen => {
                let inner = self.or(depth)?;
                if self.peek() != Some(&Token::RParen) {
                    return Err("a '(' is not closed".into());
                }
                self.at += 1;
                inner
            }
            other => return Err(format!("unexpected {}", describe(&other))),
        })
    }
}

fn static_op(op: &str) -> &'static str {
    match op {
        "||" => "||",
        "&&" => "&&",
        _ => "!",
    }
}

impl Expr {
    /// The value of the expression over `scope` (a JSON object of names).
    pub fn eval(&self, scope: &Value) -> Value {
        match self {
            Expr::Literal(v) => v.clone(),
            Expr::Name(path) => {
                let mut at = scope;
                for part in path {
                    match at.get(part) {
                        Some(v) => at = v,
                        None => return Value::Null,
                    }
                }
                at.clone()
            }
            Expr::Not(e) => Value::Bool(!truthy(&e.eval(scope))),
            Expr::And(a, b) => Value::Bool(truthy(&a.eval(scope)) && truthy(&b.eval(scope))),
            Expr::Or(a, b) => Value::Bool(truthy(&a.eval(scope)) || truthy(&b.eval(scope))),
            Expr::Compare(a, cmp, b) => Value::Bool(compare(&a.eval(scope), *cmp, &b.eval(scope))),
        }
    }

    /// True when the expression holds over `scope`.
    pub fn holds(&self, scope: &Value) -> bool {
        truthy(&self.eval(scope))
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

fn compare(a: &Value, cmp: Cmp, b: &Value) -> bool {
    use std::cmp::Ordering;
    let order = match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    };
    match cmp {
        Cmp::Eq => order.map_or(a == b, |o| o == Ordering::Equal),
        Cmp::Ne => order.map_or(a != b, |o| o != Ordering::Equal),
        Cmp::Lt => order == Some(Ordering::Less),
        Cmp::Le => matches!(order, Some(Ordering::Less | Ordering::Equal)),
        Cmp::Gt => order == Some(Ordering::Greater),
        Cmp::Ge => matches!(order, Some(Ordering::Greater | Ordering::Equal)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(text: &str, scope: Value) -> bool {
        parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .holds(&scope)
    }

    #[test]
    fn conditions_compare_and_combine_variables_and_record_fields() {
        let scope = json!({"amount": 1500, "stage": "proposal", "vip": false,
                           "record": {"source": "Web", "score": 7.5}});
        assert!(holds(
            "amount >= 1000 && stage == \"proposal\"",
            scope.clone()
        ));
        assert!(holds("${amount > 1000}", scope.clone()));
        assert!(holds("record.source == 'Web' and not vip", scope.clone()));
        assert!(holds("record.score < 10 || missing", scope.clone()));
        assert!(!holds("missing.deeper == 1", scope.clone()));
        assert!(holds("missing == null", scope.clone()));
        assert!(
            holds("amount == 1500.0", scope.clone()),
            "numbers compare as numbers"
        );
        assert!(
            !holds("stage > 5", scope.clone()),
            "text and number do not order"
        );
        assert!(holds("!(amount < 10 || vip)", scope.clone()));
        assert!(holds("'it\\'s' == \"it's\"", scope));
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        for (text, says) in [
            ("", "empty"),
            ("amount >", "ends where a value"),
            ("(amount > 1", "not closed"),
            ("amount = 1", "'=' has no meaning"),
            ("name 'x'", "unexpected"),
            ("system(\"rm\")", "unexpected"),
            ("'open", "not closed by its quote"),
            ("a.", "followed by a name"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        let deep = format!("{}x{}", "(".repeat(40), ")".repeat(40));
        assert!(parse(&deep).unwrap_err().contains("nests"));
        let not_deep = format!("{}x", "!".repeat(40));
        assert!(parse(&not_deep).unwrap_err().contains("nests"));
    }
}
