// ESLint for the report's script (make lint): the recommended rules, for a plain browser script with no modules.
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    files: ["src/embedlab/report/assets/*.js"],
    languageOptions: { ecmaVersion: 2015, sourceType: "script", globals: globals.browser },
  },
];
