/** The process environment, read here and nowhere else; the CLI hands it to the command it runs. */
export function processEnvironment(): NodeJS.ProcessEnv {
  return process.env;
}
