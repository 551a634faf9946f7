// SVG files are bundled as strings by JupyterLab's extension builder.
declare module '*.svg' {
  const svg: string;
  export default svg;
}
