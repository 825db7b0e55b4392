#pragma once
// Umbrella for ssl/methods/ (filled in as components land).
