/**
 * A user-facing failure: a file and what is wrong with it. The CLI prints `file: problem` and exits 2;
 * everything else that escapes is a bug in sdc and exits 1 with a stack.
 */
export class SdcError extends Error {
  constructor(readonly file: string, readonly problem: string, readonly exitCode = 2) {
    super(file ? `${file}: ${problem}` : problem);
    this.name = 'SdcError';
  }
}
