/** The version of this package; `package.json` holds the same (a test checks). */
export const VERSION = '0.1.0';
