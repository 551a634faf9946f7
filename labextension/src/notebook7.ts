/**
 * Jupyter Notebook 7: its pages hold one main widget each, so TensorBoard opens as a
 * tab of the file browser page (beside Files and Running), reached from other pages
 * through that page's address.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { SplitPanel, TabPanel, Widget } from '@lumino/widgets';

/** The query parameter of the file browser page that opens a job's tab. */
export const JOB_PARAM = 'forgather-tb';

/** Which Notebook 7 page this is (`tree`, `notebooks`, `edit`, ...); null in JupyterLab. */
export function notebookPage(): string | null {
  return PageConfig.getOption('notebookPage') || null;
}

/** The tabs of Notebook 7's file browser page, or null on any other page. */
export function treeTabs(app: JupyterFrontEnd): TabPanel | null {
  const main = app.shell.currentWidget;
  return notebookPage() === 'tree' && main instanceof TabPanel ? main : null;
}

/** The address of the file browser page that opens job `id` in a tab. */
export function treeUrl(id: string): string {
  return (
    URLExt.join(PageConfig.getBaseUrl(), 'tree') +
    URLExt.objectToQueryString({ [JOB_PARAM]: id })
  );
}

/** The job this page's address asks to open, if any. */
export function requestedJob(): string | null {
  return new URLSearchParams(window.location.search).get(JOB_PARAM);
}

/**
 * Show a widget as the current tab of the file browser page. Once it is closed, the
 * address no longer asks for a job, so a reload does not reopen it.
 */
export function showInTree(tabs: TabPanel, widget: Widget): void {
  if (!tabs.widgets.includes(widget)) {
    tabs.addWidget(widget);
    widget.disposed.connect(forgetRequestedJob);
  }
  tabs.currentWidget = widget;
}

function forgetRequestedJob(): void {
  const url = new URL(window.location.href);
  if (url.searchParams.has(JOB_PARAM)) {
    url.searchParams.delete(JOB_PARAM);
    window.history.replaceState(window.history.state, '', url.href);
  }
}

/** The share of the page the bottom panel takes when it opens. */
const BOTTOM_SHARE = 0.35;

/**
 * Show a widget in the page's bottom panel. Notebook 7 opens that panel at its
 * smallest (its own log console too): give it a share of the page it can be read in.
 */
export function showInBottomPanel(app: JupyterFrontEnd, widget: Widget): void {
  if (!widget.parent) {
    app.shell.add(widget, 'down');
  }
  app.shell.activateById(widget.id);
  // Once the panel is shown and laid out (two frames on), its size is its real one.
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      const split = widget.parent?.parent?.parent; // stacked panel, tabs, split
      if (split instanceof SplitPanel && split.widgets.length === 2) {
        const [, bottom] = split.relativeSizes();
        if (bottom < BOTTOM_SHARE / 2) {
          split.setRelativeSizes([1 - BOTTOM_SHARE, BOTTOM_SHARE]);
        }
      }
    })
  );
}
