/**
 * TensorBoard in a main-area tab: its proxied page in an IFrame.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { IFrame } from '@jupyterlab/ui-components';

import { tensorboardIcon } from '../icons';

/** The restorable description of a TensorBoard tab. */
export interface ITensorBoardViewArgs {
  id: string;
  title: string;
  /** The job's `url`: a path on the server (`<base_url>tb/<id>/`). */
  url: string;
}

/** A main-area tab showing one job's TensorBoard. */
export function createTensorBoardView(
  args: ITensorBoardViewArgs,
  src: string
): MainAreaWidget<IFrame> {
  // TensorBoard is served from this origin through Jupyter's login, and its page needs
  // scripts and its own XHRs with that login: same-origin scripts, popups for its links.
  const content = new IFrame({
    sandbox: [
      'allow-scripts',
      'allow-same-origin',
      'allow-forms',
      'allow-downloads',
      'allow-popups'
    ],
    referrerPolicy: 'same-origin'
  });
  content.url = src;
  content.addClass('jp-ForgatherTB-frame');
  const widget = new MainAreaWidget({ content });
  widget.id = `forgather-tb-${args.id}`;
  // Kept as a path, so a restored tab follows the address Lab is opened at.
  widget.node.dataset.jobUrl = args.url;
  widget.title.label = args.title;
  widget.title.caption = `TensorBoard: ${args.title}`;
  widget.title.icon = tensorboardIcon;
  widget.title.closable = true;
  return widget;
}
