/** `npm run docs:readme`: regenerates the README's options table from the request schema. */
import fs from 'node:fs';
import { readmeWithOptionsTable } from './readme-options.js';

const file = new URL('../../README.md', import.meta.url);
const before = fs.readFileSync(file, 'utf8');
const after = readmeWithOptionsTable(before);
fs.writeFileSync(file, after);
console.log(before === after ? 'README.md options table already up to date' : 'README.md options table regenerated');
