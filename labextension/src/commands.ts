/**
 * The extension's commands: launch, show jobs, open here, compare several folders,
 * open a job or its output, relaunch an ended job.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  MainAreaWidget,
  Notification,
  showDialog,
  showErrorMessage,
  WidgetTracker
} from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { TranslationBundle } from '@jupyterlab/translation';

import { isOpenable, statusName, statusText } from './jobText';
import { tensorboardIcon } from './icons';
import { JobsModel, waitSettled } from './model';
import {
  notebookPage,
  showInBottomPanel,
  showInTree,
  treeTabs,
  treeUrl
} from './notebook7';
import { CommandIDs, IJob, ILaunchRequest } from './tokens';
import { createOutputView, OutputView } from './widgets/outputView';
import { TensorBoardSidebar } from './widgets/sidebar';
import {
  createTensorBoardView,
  ITensorBoardViewArgs,
  TensorBoardView
} from './widgets/tensorboardView';

/** What the commands act on. */
export interface ICommandContext {
  app: JupyterFrontEnd;
  model: JobsModel;
  trans: TranslationBundle;
  sidebar: TensorBoardSidebar;
  views: WidgetTracker<MainAreaWidget<TensorBoardView>>;
  outputs: WidgetTracker<MainAreaWidget<OutputView>>;
  fileBrowser: IDefaultFileBrowser | null;
}

/** The arguments of `openJob` for a job. */
export function viewArgs(model: JobsModel, job: IJob): ITensorBoardViewArgs {
  return { id: job.id, title: job.label, url: job.url };
}

/** Register every command. */
export function addCommands(context: ICommandContext): void {
  const { app, model, trans, sidebar, views, outputs, fileBrowser } = context;
  const { commands, shell } = app;
  const inPalette = (args: { isPalette?: unknown }) => args.isPalette === true;

  commands.addCommand(CommandIDs.launch, {
    label: args =>
      inPalette(args) ? trans.__('TensorBoard: Launch…') : trans.__('Launch…'),
    caption: trans.__('Open the TensorBoard sidebar to launch a TensorBoard'),
    icon: args => (inPalette(args) ? undefined : tensorboardIcon),
    execute: () => {
      shell.activateById(sidebar.id);
      sidebar.focusForm();
    }
  });

  commands.addCommand(CommandIDs.showJobs, {
    label: args =>
      inPalette(args)
        ? trans.__('TensorBoard: Show jobs')
        : trans.__('Show jobs'),
    caption: trans.__('Show the running and finished TensorBoard jobs'),
    execute: () => {
      shell.activateById(sidebar.id);
      sidebar.scrollToJobs();
    }
  });

  commands.addCommand(CommandIDs.openJob, {
    label: trans.__('Open TensorBoard in a tab'),
    execute: args => {
      const { id, tab, title, url, options } =
        args as unknown as ITensorBoardViewArgs;
      const tree = treeTabs(app);
      if (notebookPage() && !tree) {
        // A Notebook 7 page other than the file browser holds one document only.
        window.open(treeUrl(id), `forgather-tb-${id}`);
        return null;
      }
      let widget = views.find(view => view.content.args.id === id);
      if (!widget) {
        const created = createTensorBoardView({
          model,
          trans,
          args: { id, tab, title, url, options },
          showOutput: job =>
            void commands.execute(CommandIDs.showOutput, {
              id: job.id,
              title: job.label
            }),
          openSidebar: () => void commands.execute(CommandIDs.launch)
        });
        // Its job may change (a relaunch): the workspace keeps the new one.
        created.content.argsChanged.connect(() => void views.save(created));
        void views.add(created);
        if (!tree) {
          shell.add(created, 'main');
        }
        widget = created;
      }
      if (tree) {
        showInTree(tree, widget);
      } else {
        shell.activateById(widget.id);
      }
      return widget;
    }
  });

  commands.addCommand(CommandIDs.showOutput, {
    label: trans.__('Show TensorBoard output'),
    execute: args => {
      const { id, title } = args as { id: string; title: string };
      const open = outputs.find(widget => widget.content.jobId === id);
      if (open) {
        shell.activateById(open.id);
        return open;
      }
      const widget = createOutputView(model.api, id, title, trans);
      void outputs.add(widget);
      if (notebookPage()) {
        showInBottomPanel(app, widget);
      } else {
        shell.add(widget, 'main', { mode: 'split-bottom' });
        shell.activateById(widget.id);
      }
      return widget;
    }
  });

  commands.addCommand(CommandIDs.relaunch, {
    label: args =>
      args.memoryLimit === undefined
        ? trans.__('Relaunch TensorBoard')
        : trans.__('Relaunch TensorBoard with a new memory limit'),
    caption: trans.__("Launch a new TensorBoard with an ended job's options"),
    execute: async args => {
      const { id, memoryLimit } = args as {
        id: string;
        memoryLimit?: number | string;
      };
      let job: IJob;
      try {
        job = await model.api.relaunch(
          id,
          memoryLimit === undefined ? {} : { memory_limit: memoryLimit }
        );
      } catch (error) {
        await showErrorMessage(
          trans.__('Cannot relaunch TensorBoard'),
          (error as Error).message
        );
        return null;
      }
      model.update(job);
      void model.refresh();
      const toast = Notification.emit(
        trans.__(
          'Relaunched “%1” as job %2: %3',
          job.label,
          job.id,
          statusText(job, trans)
        ),
        'in-progress',
        { autoClose: false }
      );
      try {
        job = await waitSettled(model.api, job.id);
      } catch (error) {
        Notification.update({
          id: toast,
          message: trans.__(
            'Relaunched “%1”: %2',
            job.label,
            (error as Error).message
          ),
          type: 'error',
          autoClose: 5000
        });
        return job;
      }
      model.update(job);
      const running = job.status === 'running';
      Notification.update({
        id: toast,
        message: job.error
          ? trans.__(
              'Relaunched “%1” as job %2: %3 (%4)',
              job.label,
              job.id,
              statusText(job, trans),
              job.error
            )
          : trans.__(
              'Relaunched “%1” as job %2: %3',
              job.label,
              job.id,
              statusText(job, trans)
            ),
        type: running ? 'success' : job.status === 'queued' ? 'info' : 'error',
        autoClose: 5000,
        actions: running
          ? [
              {
                label: trans.__('Open'),
                callback: () =>
                  void commands.execute(CommandIDs.openJob, {
                    ...viewArgs(model, job)
                  })
              }
            ]
          : []
      });
      return job;
    }
  });

  const selectedFolders = () =>
    fileBrowser ? [...fileBrowser.selectedItems()] : [];
  const selectedFolder = () => {
    const items = selectedFolders();
    return items.length === 1 && items[0].type === 'directory'
      ? items[0]
      : null;
  };

  /** Launch (or reuse) a job, wait until it runs, and open it in a tab. */
  const launchAndOpen = async (request: ILaunchRequest) => {
    try {
      let job: IJob = await model.api.launch(request);
      model.update(job);
      if (!isOpenable(job)) {
        job = await waitSettled(model.api, job.id);
        model.update(job);
      }
      if (isOpenable(job)) {
        await commands.execute(CommandIDs.openJob, {
          ...viewArgs(model, job)
        });
      } else {
        const tail = job.output_tail.length
          ? `\n\n${job.output_tail.join('\n')}`
          : '';
        const why =
          job.status === 'queued'
            ? trans.__('queued (#%1)', job.queue_position)
            : statusName(job.status, trans);
        await showErrorMessage(
          trans.__('TensorBoard did not start'),
          (job.error
            ? trans.__('“%1” is %2: %3.', job.label, why, job.error)
            : trans.__('“%1” is %2.', job.label, why)) + tail
        );
      }
    } catch (error) {
      await showErrorMessage(
        trans.__('Cannot launch TensorBoard'),
        (error as Error).message
      );
    }
  };

  commands.addCommand(CommandIDs.openHere, {
    label: trans.__('Open TensorBoard here'),
    caption: trans.__(
      'Launch (or reuse) a TensorBoard on this folder and open it in a tab'
    ),
    icon: tensorboardIcon,
    isVisible: () => selectedFolder() !== null,
    execute: async () => {
      const folder = selectedFolder();
      if (folder) {
        await launchAndOpen({
          logdir: folder.path || '.',
          window_title: folder.name || null
        });
      }
    }
  });

  const comparedFolders = () => {
    const items = selectedFolders();
    return items.length > 1 && items.every(item => item.type === 'directory')
      ? items.map(item => item.path || '.')
      : null;
  };

  commands.addCommand(CommandIDs.compareHere, {
    label: trans.__('Compare in TensorBoard'),
    caption: trans.__(
      "Launch (or reuse) one TensorBoard showing these folders' runs side by side, and open it"
    ),
    icon: tensorboardIcon,
    isVisible: () => comparedFolders() !== null,
    execute: async () => {
      const logdirs = comparedFolders();
      if (logdirs) {
        await launchAndOpen({ logdirs });
      }
    }
  });
}

/** Ask, then stop a job (or cancel it while queued). */
export async function confirmKill(
  model: JobsModel,
  job: IJob,
  trans: TranslationBundle
): Promise<void> {
  const queued = job.status === 'queued';
  const answer = await showDialog({
    title: queued
      ? trans.__('Cancel TensorBoard?')
      : trans.__('Stop TensorBoard?'),
    body: queued
      ? trans.__(
          '“%1” has not started yet; it will be removed from the queue.',
          job.label
        )
      : trans.__(
          '“%1” will stop, and its tabs will show that it ended.',
          job.label
        ),
    buttons: [
      Dialog.cancelButton({ label: trans.__('Keep it') }),
      Dialog.warnButton({
        label: queued ? trans.__('Cancel it') : trans.__('Stop it')
      })
    ]
  });
  if (!answer.button.accept) {
    return;
  }
  try {
    model.update(await model.api.kill(job.id));
  } catch (error) {
    await showErrorMessage(
      trans.__('Cannot stop TensorBoard'),
      (error as Error).message
    );
  }
}

/** Remove ended jobs from the list. */
export async function clearEnded(
  model: JobsModel,
  trans: TranslationBundle
): Promise<void> {
  try {
    await model.api.clearEnded();
  } catch (error) {
    await showErrorMessage(
      trans.__('Cannot clear the list'),
      (error as Error).message
    );
  }
  await model.refresh();
}
