/** `npm run docs:readme`: regenerates the README's options and settings tables from their schemas. */
import fs from 'node:fs';
import { readmeWithGeneratedTables } from './readme-options.js';

const file = new URL('../../README.md', import.meta.url);
const before = fs.readFileSync(file, 'utf8');
const after = readmeWithGeneratedTables(before);
fs.writeFileSync(file, after);
console.log(before === after ? 'README.md options and settings tables already up to date' : 'README.md options and settings tables regenerated');
