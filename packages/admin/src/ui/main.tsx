/** The admin page's entry point (bundled into dist/ui/app.js). */
import { render } from 'preact';
import { App } from './app.js';

render(<App />, document.getElementById('app')!);
