/**
 * Symbolic dimensions: integer polynomials over named dims (batch, height, ...) with exact arithmetic.
 * A floor division that is not exact becomes a new atom named after the expression (`floor((h-1)/2)`), so
 * the same computation reached twice still compares equal, and nothing is assumed about divisibility.
 */
export class Sym {
  /** monomial ('' for the constant; atoms sorted and joined by '*') → integer coefficient */
  private constructor(readonly terms: ReadonlyMap<string, number>) {}

  static const(n: number): Sym {
    return new Sym(n === 0 ? new Map() : new Map([['', n]]));
  }

  static atom(name: string): Sym {
    return new Sym(new Map([[name, 1]]));
  }

  /** A number when the expression is constant. */
  get value(): number | null {
    if (this.terms.size === 0) return 0;
    if (this.terms.size === 1 && this.terms.has('')) return this.terms.get('')!;
    return null;
  }

  add(o: Sym): Sym {
    const t = new Map(this.terms);
    for (const [k, c] of o.terms) {
      const v = (t.get(k) ?? 0) + c;
      if (v === 0) t.delete(k);
      else t.set(k, v);
    }
    return new Sym(t);
  }

  neg(): Sym {
    return new Sym(new Map([...this.terms].map(([k, c]) => [k, -c])));
  }

  sub(o: Sym): Sym {
    return this.add(o.neg());
  }

  mul(o: Sym): Sym {
    let out = Sym.const(0);
    for (const [k1, c1] of this.terms) {
      for (const [k2, c2] of o.terms) {
        const atoms = [...(k1 ? k1.split('*') : []), ...(k2 ? k2.split('*') : [])].sort();
        out = out.add(new Sym(new Map([[atoms.join('*'), c1 * c2]])));
      }
    }
    return out;
  }

  /** floor(this / o): exact when every coefficient divides (or both are constants); else an opaque atom. */
  floorDiv(o: Sym): Sym {
    const a = this.value;
    const b = o.value;
    if (b === 0) return Sym.atom(`(${this})/0`);
    if (a !== null && b !== null) return Sym.const(Math.floor(a / b));
    if (b !== null && [...this.terms.values()].every((c) => c % b === 0)) {
      return new Sym(new Map([...this.terms].map(([k, c]) => [k, c / b])));
    }
    // x*k / x, (2*x*y) / (x*y): an exact quotient by a single monomial
    if (o.terms.size === 1) {
      const [[mk, mc]] = [...o.terms];
      const divAtoms = mk ? mk.split('*') : [];
      const t = new Map<string, number>();
      let exact = true;
      for (const [k, c] of this.terms) {
        const atoms = k ? k.split('*') : [];
        for (const a of divAtoms) {
          const i = atoms.indexOf(a);
          if (i < 0) exact = false;
          else atoms.splice(i, 1);
        }
        if (c % mc !== 0) exact = false;
        t.set(atoms.join('*'), c / mc);
      }
      if (exact) return new Sym(t);
    }
    return Sym.atom(`floor((${this})/(${o}))`);
  }

  /**
   * min(this, c) for a constant c: exact when this is a constant, else an opaque atom named after the
   * expression (a Slice of a static axis up to a dim: `position_ids[:, :seq]` is min(seq, 77) long).
   */
  minWith(c: number): Sym {
    const v = this.value;
    // '*' joins the atoms of a monomial, so an atom's name never holds one
    return v !== null ? Sym.const(Math.min(v, c)) : Sym.atom(`min(${String(this).replace(/\*/g, '·')},${c})`);
  }

  /**
   * Is this min(x, c) for a constant c > 1? Then broadcasting it against x gives x: the two are equal,
   * or x is 1 and so is the min; min(x, c) = 1 ≠ x would need c = 1.
   */
  isMinOf(x: Sym): boolean {
    const [[name, coef] = ['', 0]] = [...this.terms];
    const m = coef === 1 ? /^min\((.*),(\d+)\)$/.exec(name) : null;
    return !!m && Number(m[2]) > 1 && m[1] === String(x).replace(/\*/g, '·');
  }

  /** True when every term is non-negative: a polynomial of dims with such coefficients is never below 0. */
  nonNegative(): boolean {
    return [...this.terms.values()].every((c) => c >= 0);
  }

  equals(o: Sym): boolean {
    if (this.terms.size !== o.terms.size) return false;
    for (const [k, c] of this.terms) if (o.terms.get(k) !== c) return false;
    return true;
  }

  toString(): string {
    if (this.terms.size === 0) return '0';
    const parts = [...this.terms]
      .sort(([a], [b]) => (a === '' ? 1 : b === '' ? -1 : a.localeCompare(b)))
      .map(([k, c]) => (k === '' ? String(c) : c === 1 ? k : c === -1 ? `-${k}` : `${c}*${k}`));
    return parts.join('+').replace(/\+-/g, '-');
  }
}

/** A dim as the IR stores it (number, symbol name, or unknown) → Sym; unknown dims get a fresh atom. */
export function symOfDim(d: number | string | null, fresh: () => string): Sym {
  if (typeof d === 'number') return Sym.const(d);
  if (typeof d === 'string' && d !== '') return Sym.atom(d);
  return Sym.atom(fresh());
}

