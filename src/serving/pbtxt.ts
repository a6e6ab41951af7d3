import { ENUMS, FieldSpec, Message, MessageValue, MESSAGES } from './model-config';

/**
 * Protobuf text format for the messages model-config.ts describes: `writeText` renders plain data (in the
 * table's field order), `readText` parses text back into the same plain data. Both refuse a field, enum
 * value or type the table does not have, so what sdc writes is checked against the schema twice: once
 * when written, once when read back before the repository is committed.
 */

const INT_RANGE: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};

function fieldsOf(message: string): Record<string, FieldSpec> {
  const fields = MESSAGES[message];
  if (!fields) throw new Error(`no message ${message} in the model-config schema`);
  return fields;
}

/** Why `v` is not a valid value of a field of type `type`, or null. */
function scalarProblem(type: FieldSpec['type'], v: unknown): string | null {
  if (type === 'string') return typeof v === 'string' ? null : `${JSON.stringify(v)} is not a string`;
  if (type === 'bool') return typeof v === 'boolean' ? null : `${JSON.stringify(v)} is not a bool`;
  if (type.startsWith('enum:')) {
    const values = ENUMS[type.slice(5)];
    return typeof v === 'string' && values.includes(v) ? null : `${JSON.stringify(v)} is not a ${type.slice(5)} (${values.join(', ')})`;
  }
  const range = INT_RANGE[type];
  if (!range) return `unexpected type ${type}`;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) return `${JSON.stringify(v)} is not an integer`;
  return BigInt(v) < range[0] || BigInt(v) > range[1] ? `${v} is out of ${type}'s range` : null;
}

/** A text-format string: UTF-8 as is, quotes and backslashes escaped, control characters as octal escapes. */
function quote(s: string): string {
  return `"${s.replace(/[\\"\x00-\x1f\x7f]/g, (c) => (c === '\\' || c === '"' ? `\\${c}` : `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`))}"`;
}

function scalarText(type: FieldSpec['type'], v: MessageValue): string {
  return type === 'string' ? quote(v as string) : String(v);
}

// ---- writing

/** `msg` as text format, one field per line, nested messages indented by two spaces. */
export function writeText(message: string, msg: Message, indent = ''): string {
  const fields = fieldsOf(message);
  for (const k of Object.keys(msg)) if (!(k in fields)) throw new Error(`${message} has no field ${k}`);
  const lines: string[] = [];
  for (const [name, spec] of Object.entries(fields)) {
    const v = msg[name];
    if (v === undefined) continue;
    const sub = spec.type.startsWith('msg:') ? spec.type.slice(4) : null;
    if (spec.label === 'map') {
      for (const [key, value] of Object.entries(v as Record<string, MessageValue>)) {
        const inner = sub ? `value {\n${writeText(sub, value as Message, `${indent}    `)}${indent}  }` : `value: ${scalarText(spec.type, value)}`;
        lines.push(`${indent}${name} {\n${indent}  key: ${JSON.stringify(key)}\n${indent}  ${inner}\n${indent}}`);
      }
    } else if (spec.label === 'repeated') {
      if (!Array.isArray(v)) throw new Error(`${message}.${name} is repeated; got ${JSON.stringify(v)}`);
      if (sub) {
        const items = v.map((item) => `${indent}  {\n${writeText(sub, item as Message, `${indent}    `)}${indent}  }`);
        lines.push(`${indent}${name} [\n${items.join(',\n')}\n${indent}]`);
      } else {
        for (const item of v) {
          const p = scalarProblem(spec.type, item);
          if (p) throw new Error(`${message}.${name}: ${p}`);
        }
        lines.push(`${indent}${name}: [ ${v.map((x) => scalarText(spec.type, x)).join(', ')} ]`.replace('[  ]', '[ ]'));
      }
    } else if (sub) {
      lines.push(`${indent}${name} {\n${writeText(sub, v as Message, `${indent}  `)}${indent}}`);
    } else {
      const p = scalarProblem(spec.type, v);
      if (p) throw new Error(`${message}.${name}: ${p}`);
      lines.push(`${indent}${name}: ${scalarText(spec.type, v)}`);
    }
  }
  return lines.map((l) => `${l}\n`).join('');
}

// ---- reading

interface Token {
  kind: 'ident' | 'number' | 'string' | 'punct';
  text: string;
  line: number;
}

/** Tokens of text format: identifiers, numbers, quoted strings, punctuation; `#` comments skipped. */
function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '\n') {
      line++;
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if ('{}[]<>:,;'.includes(c)) {
      out.push({ kind: 'punct', text: c, line });
      i++;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let s = '';
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\n') throw new Error(`line ${line}: a string does not end on its line`);
        if (text[j] === '\\') {
          const e = text[j + 1];
          const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'" };
          const octal = /^[0-7]{1,3}/.exec(text.slice(j + 1, j + 4));
          const hex = e === 'x' ? /^[0-9a-fA-F]{1,2}/.exec(text.slice(j + 2, j + 4)) : null;
          if (e in simple) {
            s += simple[e];
            j += 2;
          } else if (octal) {
            s += String.fromCharCode(parseInt(octal[0], 8));
            j += 1 + octal[0].length;
          } else if (hex) {
            s += String.fromCharCode(parseInt(hex[0], 16));
            j += 2 + hex[0].length;
          } else {
            throw new Error(`line ${line}: escape \\${e} is not supported`);
          }
        } else {
          s += text[j++];
        }
      }
      if (j >= text.length) throw new Error(`line ${line}: a string does not end`);
      out.push({ kind: 'string', text: s, line });
      i = j + 1;
    } else {
      const m = /^(-?[0-9][0-9a-zA-Z_.+-]*|[A-Za-z_][A-Za-z0-9_.]*)/.exec(text.slice(i));
      if (!m) throw new Error(`line ${line}: unexpected character ${JSON.stringify(c)}`);
      out.push({ kind: /^-?[0-9]/.test(m[1]) ? 'number' : 'ident', text: m[1], line });
      i += m[1].length;
    }
  }
  return out;
}

class Reader {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }

  private next(what: string): Token {
    const t = this.tokens[this.i++];
    if (!t) throw new Error(`the text ends where ${what} should be`);
    return t;
  }

  private eat(punct: string): boolean {
    const t = this.peek();
    if (t?.kind === 'punct' && t.text === punct) {
      this.i++;
      return true;
    }
    return false;
  }

  private expect(punct: string): void {
    const t = this.next(`'${punct}'`);
    if (t.kind !== 'punct' || t.text !== punct) throw new Error(`line ${t.line}: expected '${punct}', found ${JSON.stringify(t.text)}`);
  }

  /** Fields until `close` (or the end of the text for the top message). */
  message(message: string, close: string | null): Message {
    const fields = fieldsOf(message);
    const msg: Message = {};
    for (;;) {
      const t = this.peek();
      if (!t) {
        if (close) throw new Error(`the text ends inside a ${message}`);
        return msg;
      }
      if (close && t.kind === 'punct' && t.text === close) {
        this.i++;
        return msg;
      }
      this.i++;
      if (t.kind !== 'ident') throw new Error(`line ${t.line}: expected a field name of ${message}, found ${JSON.stringify(t.text)}`);
      const spec = fields[t.text];
      if (!spec) throw new Error(`line ${t.line}: ${message} has no field '${t.text}'`);
      this.field(message, t, spec, msg);
      if (!this.eat(',')) this.eat(';');
    }
  }

  private field(message: string, name: Token, spec: FieldSpec, msg: Message): void {
    const sub = spec.type.startsWith('msg:') ? spec.type.slice(4) : null;
    const colon = this.eat(':');
    if (!sub && !colon) throw new Error(`line ${name.line}: '${name.text}' needs ':' before its value`);
    if (spec.label === 'map') {
      const entries = this.listOr(() => this.mapEntry(spec, sub, name));
      const map = (msg[name.text] ?? {}) as Record<string, MessageValue>;
      for (const [k, v] of entries) {
        if (k in map) throw new Error(`line ${name.line}: ${message}.${name.text} has key ${JSON.stringify(k)} twice`);
        map[k] = v;
      }
      msg[name.text] = map;
    } else if (spec.label === 'repeated') {
      const values = this.listOr(() => (sub ? this.nested(sub) : this.scalar(spec, name)));
      msg[name.text] = [...((msg[name.text] as MessageValue[] | undefined) ?? []), ...values];
    } else {
      if (name.text in msg) throw new Error(`line ${name.line}: ${message}.${name.text} is set twice`);
      msg[name.text] = sub ? this.nested(sub) : this.scalar(spec, name);
    }
  }

  /** `[a, b, ...]` or one value. */
  private listOr<T>(one: () => T): T[] {
    if (!this.eat('[')) return [one()];
    const out: T[] = [];
    if (this.eat(']')) return out;
    for (;;) {
      out.push(one());
      if (this.eat(']')) return out;
      this.expect(',');
    }
  }

  private nested(message: string): Message {
    const t = this.next(`a ${message}`);
    if (t.kind === 'punct' && t.text === '{') return this.message(message, '}');
    if (t.kind === 'punct' && t.text === '<') return this.message(message, '>');
    throw new Error(`line ${t.line}: expected '{' to open a ${message}, found ${JSON.stringify(t.text)}`);
  }

  private mapEntry(spec: FieldSpec, sub: string | null, name: Token): [string, MessageValue] {
    const open = this.next('a map entry');
    const close = open.text === '{' ? '}' : open.text === '<' ? '>' : null;
    if (open.kind !== 'punct' || !close) throw new Error(`line ${open.line}: expected '{' to open a ${name.text} entry`);
    let key: string | undefined;
    let value: MessageValue | undefined;
    while (!this.eat(close)) {
      const f = this.next(`key or value of ${name.text}`);
      if (f.text === 'key' && f.kind === 'ident') {
        this.expect(':');
        key = this.scalar({ ...spec, type: 'string' }, f) as string;
      } else if (f.text === 'value' && f.kind === 'ident') {
        const colon = this.eat(':');
        if (!sub && !colon) throw new Error(`line ${f.line}: 'value' needs ':'`);
        value = sub ? this.nested(sub) : this.scalar(spec, f);
      } else {
        throw new Error(`line ${f.line}: a ${name.text} entry has only key and value, found ${JSON.stringify(f.text)}`);
      }
      if (!this.eat(',')) this.eat(';');
    }
    if (key === undefined || value === undefined) throw new Error(`line ${open.line}: a ${name.text} entry needs a key and a value`);
    return [key, value];
  }

  private scalar(spec: FieldSpec, name: Token): MessageValue {
    const t = this.next(`the value of ${name.text}`);
    let v: MessageValue;
    if (spec.type === 'string') {
      if (t.kind !== 'string') throw new Error(`line ${t.line}: ${name.text} takes a quoted string, found ${JSON.stringify(t.text)}`);
      v = t.text;
      // adjacent strings concatenate in text format
      while (this.peek()?.kind === 'string') v += this.next('a string').text;
    } else if (spec.type === 'bool') {
      const b: Record<string, boolean> = { true: true, True: true, t: true, '1': true, false: false, False: false, f: false, '0': false };
      if (!(t.text in b) || t.kind === 'string') throw new Error(`line ${t.line}: ${name.text} takes true or false, found ${JSON.stringify(t.text)}`);
      v = b[t.text];
    } else if (spec.type.startsWith('enum:')) {
      if (t.kind !== 'ident') throw new Error(`line ${t.line}: ${name.text} takes a ${spec.type.slice(5)} name, found ${JSON.stringify(t.text)}`);
      v = t.text;
    } else {
      if (t.kind !== 'number' || !/^-?(0|[1-9][0-9]*)$/.test(t.text)) throw new Error(`line ${t.line}: ${name.text} takes an integer, found ${JSON.stringify(t.text)}`);
      v = Number(t.text);
    }
    const p = scalarProblem(spec.type, v);
    if (p) throw new Error(`line ${t.line}: ${name.text}: ${p}`);
    return v;
  }
}

/** Parse text format as `message` (e.g. ModelConfig); throws naming the line of the first problem. */
export function readText(message: string, text: string): Message {
  return new Reader(tokenize(text)).message(message, null);
}
